import { Controller, Headers, HttpCode, Module, Post, Res, type Type } from '@nestjs/common';
import { BalancerModule, ProbeRunner, type BalancerOptions } from '../../src';
import { PoolRegistry } from '../../src/admission/pool-registry';
import { PROBE_HEADER } from '../../src/config/balancer.constants';
import { SimulatedModel } from '../../examples/simulated-model';
import { PLATFORMS, startApp, type PlatformName, type RunningApp } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { poolStats, waitFor } from '../harness/wait-for';

/*
 * Issue 19, item 1: while a route's capacity is probed, real requests are admitted at an
 * interim cap (1 here: nothing stored) and share each level with the probe. Counted at the
 * model: every request that enters it records how many were inside (probe and real) and the
 * level the probe was measuring, so "never more than the level" is checked on every entry.
 *
 * The model is the slow one: S = 3 s, true K = 2 (slower above), failing at 6 in
 * flight. The probe is kept to levels 1 and 2 (`maxConcurrency: 2`, few samples) so a run takes
 * about half a minute; `latencyThresholdMs` is set because this test is about admission, not
 * about the latency rule.
 */

const S = 3000;
const POOL = '/predict';

interface Entry {
  probe: boolean;
  /** Requests inside the model once this one entered. */
  total: number;
  probeIn: number;
  realIn: number;
  /** The level being measured when it entered (`null`: none yet), and whether a probe ran. */
  level: number | null;
  probing: boolean;
}

/** A slow knee model that records, per entry, what was inside it. */
class CountingModel {
  readonly model = new SimulatedModel({
    capacity: 2,
    serviceTimeMs: S,
    shape: 'knee',
    slowdown: 1.5,
    failAt: 6,
  });
  readonly entries: Entry[] = [];
  private probeIn = 0;
  private realIn = 0;
  /** The probing worker's view of the pool (set once the apps run). */
  status: () => { level: number | null; probing: boolean } = () => ({
    level: null,
    probing: false,
  });

  async run(probe: boolean): Promise<number> {
    if (probe) this.probeIn++;
    else this.realIn++;
    this.entries.push({
      probe,
      total: this.probeIn + this.realIn,
      probeIn: this.probeIn,
      realIn: this.realIn,
      ...this.status(),
    });
    try {
      return (await this.model.run()).status;
    } finally {
      if (probe) this.probeIn--;
      else this.realIn--;
    }
  }
}

interface RawReply {
  status(code: number): unknown;
  code?(code: number): unknown;
}

function appModule(model: CountingModel, balancer: BalancerOptions): Type {
  @Controller()
  class PredictController {
    @Post('predict')
    @HttpCode(200)
    async predict(
      @Headers(PROBE_HEADER) probe: string | undefined,
      @Res({ passthrough: true }) res: RawReply,
    ): Promise<{ ok: boolean }> {
      const status = await model.run(probe !== undefined);
      if (typeof res.code === 'function') res.code(status);
      else res.status(status);
      return { ok: status < 400 };
    }
  }
  @Module({ imports: [BalancerModule.forRoot(balancer)], controllers: [PredictController] })
  class ProbingAppModule {}
  return ProbingAppModule;
}

function options(storage?: { url: string; keyPrefix: string }): BalancerOptions {
  return {
    healthEndpoint: false,
    ui: { enable: false },
    latencyThresholdMs: 10_000,
    probe: {
      warmupMs: 0,
      levelDurationMs: 50,
      minSamples: 3,
      levelLatencies: 2,
      maxConcurrency: 2,
    },
    ...(storage ? { storage: { type: 'redis' as const, ...storage } } : {}),
    endpoints: { [POOL]: { method: 'POST' } },
  };
}

/** The view the model checks against: the pool as the worker that probes it sees it. */
function watch(model: CountingModel, apps: RunningApp[]): void {
  const registries = apps.map((a) => a.app.get(PoolRegistry));
  model.status = () => {
    for (const r of registries) {
      const s = r.get(POOL)?.probeStatus;
      if (s && (s.state === 'running' || s.state === 'pending'))
        return { level: s.level ?? null, probing: true };
    }
    return { level: null, probing: false };
  };
}

/** Real requests sent one after another by `clients` senders until `stop()`; statuses kept. */
function realTraffic(urls: string[], clients: number) {
  let running = true;
  let n = 0;
  const statuses: number[] = [];
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const res = await fetch(`${urls[n++ % urls.length]}${POOL}`, { method: 'POST' });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
  });
  return {
    statuses,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Every entry while probing stayed within the level measured (1 before the first level). */
function checkLevels(model: CountingModel): void {
  const during = model.entries.filter((e) => e.probing);
  expect(during.length).toBeGreaterThan(0);
  const over = during.filter((e) => e.total > (e.level ?? 1));
  expect(over).toEqual([]);
  // The sharing happened: at a level of 2, a real request and a probe request were inside
  // together (without sharing the model would have seen 3 at that level).
  expect(during.some((e) => e.level === 2 && e.realIn > 0 && e.probeIn > 0)).toBe(true);
  expect(model.model.failed).toBe(0);
}

jest.setTimeout(180_000);

describe.each(PLATFORMS)('admission while probing on %s', (platform: PlatformName) => {
  let app: RunningApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('serves a real request sent 1 s after startup before the probe ends; the model never sees more than the level', async () => {
    const model = new CountingModel();
    app = await startApp(platform, appModule(model, options()));
    watch(model, [app]);
    const url = app.url;
    const registry = app.app.get(PoolRegistry);
    const started = Date.now();

    await waitFor(() => Date.now() - started >= 1000, 2000, '1 s after startup');
    const early = await poolStats(url, POOL);
    expect(early).toMatchObject({ capacity: 1, capacity_source: 'probing' });
    const first = await fetch(`${url}${POOL}`, { method: 'POST' });
    expect(first.status).toBe(200);
    // Served while the probe still runs (a 3 s request; the probe needs well over 20 s).
    expect(registry.get(POOL)!.probeStatus.state).toBe('running');
    const servedAfterMs = Date.now() - started;

    const stats = (await poolStats(url, POOL)) as unknown as {
      probe: { interim_capacity: number; interim_from: string; level: number | null };
    };
    expect(stats.probe.interim_capacity).toBe(1);
    expect(stats.probe.interim_from).toBe('minimum');
    expect(stats.probe.level).toBeGreaterThanOrEqual(1);

    // Real traffic through the rest of the probe.
    const traffic = realTraffic([url], 2);
    await app.app.get(ProbeRunner).whenIdle();
    await traffic.stop();

    const done = await poolStats(url, POOL);
    expect(done).toMatchObject({ capacity: 2, capacity_source: 'probe' });
    expect(traffic.statuses.length).toBeGreaterThan(0);
    expect(traffic.statuses.filter((s) => s !== 200)).toEqual([]);
    checkLevels(model);
    console.log(
      `[probing-admission ${platform}] first real request served ${servedAfterMs} ms after startup; ` +
        `${traffic.statuses.length} more during the probe; peak ${model.model.peak} in the model`,
    );
  });
});

describe('admission while probing with Redis: two workers, one global interim cap', () => {
  let redis: { url: string; stop(): Promise<void> };
  const apps: RunningApp[] = [];
  beforeAll(async () => {
    redis = await sharedRedis();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await redis.stop();
  });

  it('real requests to either worker share the levels of the one probe', async () => {
    const model = new CountingModel();
    const storage = { url: redis.url, keyPrefix: uniquePrefix('interim') };
    for (const platform of PLATFORMS) {
      apps.push(await startApp(platform, appModule(model, options(storage))));
    }
    watch(model, apps);
    await waitFor(
      async () => (await poolStats(apps[1].url, POOL)).capacity === 1,
      10_000,
      'the interim cap in the second worker',
    );
    // Every worker shows the global interim cap and where it came from, the prober or not.
    for (const a of apps) {
      const view = (await poolStats(a.url, POOL)) as unknown as {
        probe: { interim_capacity: number | null; interim_from: string | null };
      };
      expect(view.probe).toMatchObject({ interim_capacity: 1, interim_from: 'minimum' });
    }
    const traffic = realTraffic(
      apps.map((a) => a.url),
      3,
    );
    await Promise.all(apps.map((a) => a.app.get(ProbeRunner).whenIdle()));
    await traffic.stop();

    const probers = apps.filter(
      (a) => a.app.get(PoolRegistry).get(POOL)!.probeStatus.state === 'done',
    );
    expect(probers).toHaveLength(1);
    for (const a of apps) {
      expect(await poolStats(a.url, POOL)).toMatchObject({ capacity: 2, capacity_source: 'probe' });
    }
    expect(traffic.statuses.filter((s) => s !== 200)).toEqual([]);
    checkLevels(model);
  });
});
