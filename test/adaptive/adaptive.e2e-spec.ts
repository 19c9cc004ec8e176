import type { Type } from '@nestjs/common';
import { PLATFORMS, startApp, CapturingLogger, type RunningApp } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { poolStats, waitFor } from '../harness/wait-for';
import {
  adaptiveAppModule,
  closedLoop,
  p99,
  ShiftingModel,
  type ClosedLoop,
} from './adaptive-fixtures';

/**
 * Adaptive capacity end to end: a backend of true capacity 8 (100 ms per request, 100 ms more
 * for every request beyond 8) drops to 4 mid-run and comes back, under 24 closed-loop clients. The
 * pool starts from a manual capacity 8 with `adaptive: { interval: 1, max: 8 }`. The control run
 * with adaptive off (no speed reading) is `adaptive-off.e2e-spec.ts`, in the parallel pass.
 *
 * Documented time (docs/probing.md, adaptive "How fast"): down within confirmIntervals + 1 = 3
 * intervals of a drop, back up within about 40 intervals of a recovery. Asserted with a margin
 * for a shared machine's timer lag (FOLLOW_LIMIT_MS, CLIMB_LIMIT_MS); this suite runs in the
 * serial timing pass (`npm run test:timing`), never beside other suites.
 *
 * Every client request must be served (200): p99 counts only requests that reached the model,
 * so a balancer answering 503 instead of queueing would otherwise pass.
 */
const S = 100;
/**
 * The latency threshold of this scenario (p99 inside the model): well under the 500 ms a
 * request takes at cap 8 / K 4, above the 200 ms of a short trial at 5, with room for the
 * timer lag of a shared 2-core machine (load averages of 15-20 while this was written).
 */
const P99_LIMIT_MS = 3 * S;
const INTERVAL_S = 1;
const POOL = '/predict';
/** Down within 3 intervals (documented), plus 3 s of margin. */
const FOLLOW_LIMIT_MS = 3 * INTERVAL_S * 1000 + 3000;
/** Back up within about 40 intervals (documented), plus 10 s of margin. */
const CLIMB_LIMIT_MS = 40 * INTERVAL_S * 1000 + 10_000;
/** Every answer was a 200 and no request failed. */
const ALL_SERVED = { statuses: { 200: expect.any(Number) }, errors: [] };

// A drop, a recovery and the windows around them take a minute or two on a busy machine.
jest.setTimeout(240_000);

function options(adaptive: boolean, storage?: { url: string; keyPrefix: string }) {
  return {
    healthEndpoint: false as const,
    probeOnStartup: false,
    ui: { enable: false },
    // The suite's own fresh Redis: no restart hold (a young server otherwise holds grants for
    // one lease TTL, and the interval that ends the hold skews the controller's reference).
    ...(storage ? { storage: { type: 'redis' as const, restartHold: 0, ...storage } } : {}),
    endpoints: {
      [POOL]: {
        method: 'POST' as const,
        capacity: 8,
        adaptive: adaptive ? { interval: INTERVAL_S, max: 8 } : false,
      },
    },
  };
}

async function completions(model: ShiftingModel, since: number, n: number): Promise<number[]> {
  await waitFor(() => model.since(since).length >= n, 30_000, `${n} completions`);
  return model.since(since);
}

// The controller lives in the store and reads latencies inside the app: the adapter only carries
// the requests, so the single-app runs use one (the Redis run below has one worker of each).
describe.each(['express'] as const)('adaptive capacity on %s', (platform) => {
  let app: RunningApp | undefined;
  let load: ClosedLoop | undefined;
  afterEach(async () => {
    await load?.stop();
    await app?.close();
    load = undefined;
    app = undefined;
  });

  it('follows the backend from 8 down to 4 and back; p99 returns under the limit', async () => {
    const model = new ShiftingModel(8, S);
    const logger = new CapturingLogger();
    app = await startApp(platform, adaptiveAppModule(model, options(true)) as unknown as Type, {
      logger,
    });
    load = closedLoop([app.url], 24);
    await completions(model, 0, 200);

    model.k = 4;
    const dropped = Date.now();
    const thrash = p99(await completions(model, dropped, 20));
    await waitFor(async () => (await poolStats(app!.url, POOL)).capacity! <= 4, 30_000, 'cap <= 4');
    const followedMs = Date.now() - dropped;
    expect(followedMs).toBeLessThanOrEqual(FOLLOW_LIMIT_MS);
    const stats = await poolStats(app.url, POOL);
    expect(stats.capacity_source).toBe('adaptive');
    const settled = Date.now();
    const after = p99(await completions(model, settled, 300));
    expect(after).toBeLessThanOrEqual(P99_LIMIT_MS);
    expect(thrash).toBeGreaterThan(P99_LIMIT_MS);

    model.k = 8;
    const recovered = Date.now();
    await waitFor(async () => (await poolStats(app!.url, POOL)).capacity === 8, 90_000, 'cap 8');
    const climbedMs = Date.now() - recovered;
    expect(climbedMs).toBeLessThanOrEqual(CLIMB_LIMIT_MS);
    // The cap held all along: never more than 8 in the model at once.
    expect(model.peak).toBeLessThanOrEqual(8);
    const outcome = await load.stop();
    load = undefined;
    expect(outcome).toEqual(ALL_SERVED);

    const body = (await (await fetch(`${app.url}/balancer/stats`)).json()) as {
      endpoints: Record<
        string,
        { adaptive: { controller: boolean; history: Array<{ capacity: number }> } }
      >;
    };
    const adaptive = body.endpoints[POOL].adaptive;
    expect(adaptive.controller).toBe(true);
    const caps = adaptive.history.map((h) => h.capacity);
    expect(caps[0]).toBe(8);
    expect(Math.min(...caps)).toBeLessThanOrEqual(4);
    expect(caps[caps.length - 1]).toBe(8);
    expect(logger.messages('log').some((m) => /\/predict: capacity \d+ -> [1-4] \(/.test(m))).toBe(
      true,
    );
    const metrics = await (await fetch(`${app.url}/balancer/metrics`)).text();
    expect(metrics).toMatch(/balancer_capacity\{pool="\/predict"\} 8/);
    console.log(
      `[adaptive ${platform}] down in ${followedMs} ms, p99 ${thrash} -> ${after} ms, back to 8 in ${climbedMs} ms; history ${caps.join(' ')}`,
    );
  });
});

describe('adaptive capacity with Redis: two workers, one controller', () => {
  let redis: { url: string; stop(): Promise<void> };
  const apps: RunningApp[] = [];
  let load: ClosedLoop | undefined;
  beforeAll(async () => {
    redis = await sharedRedis();
  });
  afterAll(async () => {
    await load?.stop();
    for (const a of apps) await a.close();
    await redis.stop();
  });

  it('one worker controls, both follow the shared capacity', async () => {
    const model = new ShiftingModel(8, S);
    const storage = { url: redis.url, keyPrefix: uniquePrefix('adaptive') };
    for (const platform of PLATFORMS) {
      apps.push(
        await startApp(
          platform,
          adaptiveAppModule(model, options(true, storage)) as unknown as Type,
        ),
      );
    }
    load = closedLoop(
      apps.map((a) => a.url),
      24,
    );
    await completions(model, 0, 200);
    model.k = 4;
    await waitFor(
      async () => {
        const caps = await Promise.all(
          apps.map(async (a) => (await poolStats(a.url, POOL)).capacity!),
        );
        return caps.every((c) => c <= 4);
      },
      30_000,
      'both workers at cap <= 4',
    );
    const views = await Promise.all(
      apps.map(async (a) => {
        const body = (await (await fetch(`${a.url}/balancer/stats`)).json()) as {
          endpoints: Record<string, { capacity_source: string; adaptive: { controller: boolean } }>;
        };
        return body.endpoints[POOL];
      }),
    );
    expect(views.map((v) => v.capacity_source)).toEqual(['adaptive', 'adaptive']);
    expect(views.filter((v) => v.adaptive.controller)).toHaveLength(1);
    // The global cap holds across both workers: the model never saw more than 8 at once, and
    // after the drop never more than the shared cap in force (4, or a trial step above it).
    expect(model.peak).toBeLessThanOrEqual(8);
    // Requests admitted under the old cap finish within a few service times: then count anew.
    await completions(model, Date.now(), 20);
    model.resetPeak();
    const settled = Date.now();
    const after = p99(await completions(model, settled, 300));
    const histories = await Promise.all(
      apps.map(async (a) => {
        const body = (await (await fetch(`${a.url}/balancer/stats`)).json()) as {
          endpoints: Record<
            string,
            { adaptive: { history: Array<{ capacity: number; reason: string }> } }
          >;
        };
        return body.endpoints[POOL].adaptive.history;
      }),
    );
    const hist = histories.map((h) => h.map((e) => `${e.capacity} (${e.reason})`));
    console.log(`[adaptive redis] p99 after ${after} ms; history ${JSON.stringify(hist)}`);
    expect(after).toBeLessThanOrEqual(P99_LIMIT_MS);
    // The controller's caps from the drop on (the one controller's history).
    const caps = histories.flat().map((e) => e.capacity);
    const sinceDrop = caps.slice(caps.findIndex((c) => c <= 4));
    expect(Math.max(...sinceDrop)).toBeLessThan(8);
    expect(model.peak).toBeLessThanOrEqual(Math.max(...sinceDrop));
    const outcome = await load!.stop();
    load = undefined;
    expect(outcome).toEqual(ALL_SERVED);
  });
});
