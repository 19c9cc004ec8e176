import {
  BalancerModule,
  CapacityStore,
  MemoryCapacityStore,
  ProbeRunner,
  type BalancerOptions,
} from '../../src';
import { SimulatedModel } from '../../examples/simulated-model';
import { PROBE_HEADER } from '../../src/config/balancer.constants';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';
import { PLATFORMS } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';

/**
 * Knee-shaped model: S ms up to K in flight, >= 10 S above; the latency limit sits at 5 S.
 * A startup probe that fails (a refused body, a route without `probe.path`) reads no machine
 * speed: test/probe/probe-failure.e2e-spec.ts, in the parallel pass.
 */
const S = 40;
const KNEE = { serviceTimeMs: S, shape: 'knee' as const, slowdown: 10 };

function balancer(extra: BalancerOptions = {}) {
  return BalancerModule.forRoot({
    healthEndpoint: false,
    latencyThresholdMs: 5 * S,
    // levelLatencies 2: a level above K (>= 10 S a request) fails on any sample; the default 10
    // latencies would only lengthen the failing levels.
    probe: { warmupMs: 150, levelDurationMs: 500, minSamples: 20, levelLatencies: 2 },
    endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
    ...extra,
  });
}

interface ProbeStats {
  state: string;
  error: string | null;
  max_concurrency: number | null;
  report: { levels: Array<{ concurrency: number }>; stopReason: string } | null;
}

async function probeStats(url: string): Promise<ProbeStats> {
  const stats = (await poolStats(url, '/predict')) as unknown as { probe: ProbeStats };
  return stats.probe;
}

function predict(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(PREDICT_BODY),
  });
}

describe.each(PLATFORMS)('startup probe on %s', (platform) => {
  let app: ModelApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('probes once listening, admits real requests at the interim cap meanwhile, then enforces the measured cap', async () => {
    const k = 3;
    const model = new SimulatedModel({ capacity: k, ...KNEE });
    app = await startModelApp(platform, model, [balancer()]);
    const url = app.url;

    // Real requests sent while the probe runs are admitted at the interim cap (1: nothing is
    // stored), sharing the probe's levels (test/probe/probing-admission.e2e-spec.ts): none waits
    // for the whole probe, none is dropped.
    await waitFor(
      async () => (await probeStats(url)).state === 'running',
      10_000,
      'the probe to start',
    );
    const early = await poolStats(url, '/predict');
    expect(early.capacity).toBe(1);
    expect(early.capacity_source).toBe('probing');
    const during = Array.from({ length: 6 }, () => predict(url));

    await app.app.get(ProbeRunner).whenIdle();
    const stats = await poolStats(url, '/predict');
    expect(stats.capacity).toBe(k);
    expect(stats.capacity_source).toBe('probe');
    const probe = await probeStats(url);
    expect(probe.state).toBe('done');
    expect(probe.max_concurrency).toBe(k);
    expect(probe.report?.stopReason).toBe('limit');
    // The probe went above K: its dedicated requests bypass admission.
    expect(Math.max(...probe.report!.levels.map((l) => l.concurrency))).toBeGreaterThan(k);

    const served = await Promise.all(during);
    expect(served.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);

    // Enforced: 12 at once never put more than K into the model.
    model.reset();
    const burst = await Promise.all(Array.from({ length: 12 }, () => predict(url)));
    expect(burst.every((r) => r.status === 200)).toBe(true);
    expect(model.peak).toBeLessThanOrEqual(k);

    // A forged probe header is gated like any request.
    model.reset();
    const forged = await Promise.all(
      Array.from({ length: 8 }, () => predict(url, { [PROBE_HEADER]: 'f'.repeat(48) })),
    );
    expect(forged.every((r) => r.status === 200)).toBe(true);
    expect(model.peak).toBeLessThanOrEqual(k);
  });
});

describe('startup probe: coordination through the store (workers sharing one store)', () => {
  const k = 1;
  const apps: ModelApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function worker(
    store: CapacityStore,
    model: SimulatedModel,
    extra: BalancerOptions = {},
  ): Promise<ModelApp> {
    const a = await startModelApp('express', model, [balancer(extra)], (b) =>
      b.overrideProvider(CapacityStore).useValue(store),
    );
    apps.push(a);
    return a;
  }

  it('reuses a stored result, re-measures once with forceReprobe, and never twice at once', async () => {
    const store = new MemoryCapacityStore();
    const model = new SimulatedModel({ capacity: k, ...KNEE });

    const first = await worker(store, model);
    await first.app.get(ProbeRunner).whenIdle();
    expect((await probeStats(first.url)).state).toBe('done');
    const measuredAt = (await store.getProbeResult('/predict'))!.measuredAt;

    // A second worker finds the result and sends no probe traffic.
    model.reset();
    const second = await worker(store, model);
    await second.app.get(ProbeRunner).whenIdle();
    expect((await probeStats(second.url)).state).toBe('reused');
    expect((await poolStats(second.url, '/predict')).capacity).toBe(k);
    expect(model.served + model.failed).toBe(0);

    // Two workers started with forceReprobe: one measures again, the other waits and reuses it.
    const [a, b] = await Promise.all([
      worker(store, model, { forceReprobe: true }),
      worker(store, model, { forceReprobe: true }),
    ]);
    await Promise.all([a.app.get(ProbeRunner).whenIdle(), b.app.get(ProbeRunner).whenIdle()]);
    const states = [(await probeStats(a.url)).state, (await probeStats(b.url)).state].sort();
    expect(states).toEqual(['done', 'reused']);
    expect((await store.getProbeResult('/predict'))!.measuredAt > measuredAt).toBe(true);
    expect((await poolStats(a.url, '/predict')).capacity).toBe(k);
    expect((await poolStats(b.url, '/predict')).capacity).toBe(k);
  });

  it('stops a running probe at shutdown and releases the lock', async () => {
    const store = new MemoryCapacityStore();
    const model = new SimulatedModel({ capacity: 8, ...KNEE });
    const a = await worker(store, model);
    await waitFor(
      async () => (await probeStats(a.url)).state === 'running',
      10_000,
      'the probe to start',
    );
    const started = Date.now();
    await a.close();
    await a.app.get(ProbeRunner).whenIdle();
    expect(Date.now() - started).toBeLessThan(5_000);
    const lock = await store.tryProbeLock('/predict', 1000);
    expect(lock).not.toBeNull();
    expect(await store.getProbeResult('/predict')).toBeNull();
  });
});
