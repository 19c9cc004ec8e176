import { BalancerModule, ProbeRunner } from '../../src';
import { SimulatedModel } from '../../examples/simulated-model';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';
import { PLATFORMS } from '../harness/platforms';
import { poolStats } from '../harness/wait-for';

/** Knee-shaped model: S ms up to K in flight, >= 10 S above; the latency limit sits at 5 S. */
const S = 40;
const K = 3;
/** Units of the probe's request (its cost header, set in the probe's headers). */
const PROBE_UNITS = 100;

function predict(url: string, tokens: number): Promise<Response> {
  return fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tokens': String(tokens) },
    body: JSON.stringify(PREDICT_BODY),
  });
}

describe.each(PLATFORMS)('the probe of a costed route measures units (%s)', (platform) => {
  let app: ModelApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('capacity = probed concurrency x the probe request units, then enforced in units', async () => {
    const model = new SimulatedModel({
      capacity: K,
      serviceTimeMs: S,
      shape: 'knee',
      slowdown: 10,
    });
    app = await startModelApp(platform, model, [
      BalancerModule.forRoot({
        healthEndpoint: false,
        latencyThresholdMs: 5 * S,
        probe: { warmupMs: 150, levelDurationMs: 500, minSamples: 20, levelLatencies: 2 },
        endpoints: {
          '/predict': {
            method: 'POST',
            body: PREDICT_BODY,
            headers: { 'x-tokens': String(PROBE_UNITS) },
            costHeader: 'x-tokens',
          },
        },
      }),
    ]);
    await app.app.get(ProbeRunner).whenIdle();
    const stats = (await poolStats(app.url, '/predict')) as unknown as {
      capacity: number;
      capacity_source: string;
      probe: { max_concurrency: number };
      units?: { active: number };
    };
    // What the probe measured (K on a quiet machine; the accuracy is the timing pass's
    // test/probe/probe suite): the capacity is that concurrency in the probe request's units.
    const c = stats.probe.max_concurrency;
    expect(c).toBeGreaterThanOrEqual(1);
    expect(c).toBeLessThanOrEqual(K);
    expect(stats.capacity).toBe(c * PROBE_UNITS);
    expect(stats.capacity_source).toBe('probe');
    expect(stats.units).toMatchObject({ active: 0 });

    // Requests the size of the probe's: c at a time, as probed.
    model.reset();
    const same = await Promise.all(Array.from({ length: 9 }, () => predict(app!.url, PROBE_UNITS)));
    expect(same.map((r) => r.status)).toEqual(same.map(() => 200));
    expect(model.peak).toBe(c);
    // Requests half as large: twice as many at a time.
    model.reset();
    const half = await Promise.all(
      Array.from({ length: 12 }, () => predict(app!.url, PROBE_UNITS / 2)),
    );
    expect(half.map((r) => r.status)).toEqual(half.map(() => 200));
    expect(model.peak).toBe(2 * c);
  });
});
