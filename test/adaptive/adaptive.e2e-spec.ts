import type { Type } from '@nestjs/common';
import { PLATFORMS, startApp, CapturingLogger, type RunningApp } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { poolStats, waitFor } from '../harness/wait-for';
import { adaptiveAppModule, closedLoop, p99, ShiftingModel } from './adaptive-fixtures';

/**
 * Adaptive capacity end to end: a backend of true capacity 8 (100 ms per request, 100 ms more
 * for every request beyond 8) drops to 4 mid-run and comes back, under 24 closed-loop clients. The
 * pool starts from a manual capacity 8 with `adaptive: { interval: 1, max: 8 }`.
 *
 * Documented time (README "Adaptive capacity"): down within confirmIntervals + 1 = 3
 * intervals of a drop (here 3 s; waited for up to 30 s on a shared machine); back up within
 * 40 intervals (40 s; waited for up to 90 s).
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

// A drop, a recovery and the windows around them take a minute or two on a busy machine.
jest.setTimeout(240_000);

function options(adaptive: boolean, storage?: { url: string; keyPrefix: string }) {
  return {
    healthEndpoint: false as const,
    probeOnStartup: false,
    ui: { enable: false },
    ...(storage ? { storage: { type: 'redis' as const, ...storage } } : {}),
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

describe.each(PLATFORMS)('adaptive capacity on %s', (platform) => {
  let app: RunningApp | undefined;
  let load: { stop(): Promise<void> } | undefined;
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
    // Numbers for the report (not asserted: the machine is shared).
    console.log(
      `[adaptive ${platform}] down in ${followedMs} ms, p99 ${thrash} -> ${after} ms, back to 8 in ${climbedMs} ms; history ${caps.join(' ')}`,
    );
  });

  it('with adaptive off the capacity stays put', async () => {
    const model = new ShiftingModel(8, S);
    app = await startApp(platform, adaptiveAppModule(model, options(false)) as unknown as Type);
    load = closedLoop([app.url], 24);
    await completions(model, 0, 100);
    model.k = 4;
    const dropped = Date.now();
    // As many completions as the adaptive run needed to follow, several times over.
    const during = p99(await completions(model, dropped, 200));
    const stats = (await poolStats(app.url, POOL)) as Record<string, unknown>;
    expect(stats).toMatchObject({ capacity: 8, capacity_source: 'manual', adaptive: null });
    expect(during).toBeGreaterThan(P99_LIMIT_MS);
  });
});

describe('adaptive capacity with Redis: two workers, one controller', () => {
  let redis: { url: string; stop(): Promise<void> };
  const apps: RunningApp[] = [];
  let load: { stop(): Promise<void> } | undefined;
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
    // The global cap holds across both workers: the model never saw more than 8 at once.
    const settled = Date.now();
    const after = p99(await completions(model, settled, 300));
    const hist = await Promise.all(
      apps.map(async (a) => {
        const body = (await (await fetch(`${a.url}/balancer/stats`)).json()) as {
          endpoints: Record<
            string,
            { adaptive: { history: Array<{ capacity: number; reason: string }> } }
          >;
        };
        return body.endpoints[POOL].adaptive.history.map((h) => `${h.capacity} (${h.reason})`);
      }),
    );
    console.log(`[adaptive redis] p99 after ${after} ms; history ${JSON.stringify(hist)}`);
    expect(after).toBeLessThanOrEqual(P99_LIMIT_MS);
  });
});
