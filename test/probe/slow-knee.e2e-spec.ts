import { performance } from 'node:perf_hooks';
import { BalancerModule, ProbeRunner } from '../../src';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';
import { poolStats } from '../harness/wait-for';

/**
 * A model of the kind this module is for (issue 19): one call takes 3 s, 2 run at full speed,
 * above 2 every call slows down (x4, growing with the number in flight) and at 6 in flight calls
 * fail (out of memory). `BalancerModule.forRoot()` with its defaults, no latency threshold:
 * the limit comes from the endpoint's own unloaded latency, and the probe must find 2 within
 * its default time budget without driving the model into its failures. (The probe's accuracy
 * does not depend on the adapter: one is enough.)
 */
const K = 2;
const S = 3000;

describe('startup probe of a slow knee-shaped endpoint (forRoot defaults)', () => {
  let app: ModelApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('finds capacity 2 within 120 s with at most 3 failed model calls', async () => {
    const t = performance.now();
    app = await startModelApp(
      'express',
      { capacity: K, serviceTimeMs: S, shape: 'knee', failAt: 6 },
      [
        BalancerModule.forRoot({
          logger: false,
          endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
        }),
      ],
    );
    await app.app.get(ProbeRunner).whenIdle();
    const seconds = (performance.now() - t) / 1000;

    const stats = await poolStats(app.url, '/predict');
    const probe = (stats as unknown as { probe: unknown }).probe as {
      state: string;
      stop_reason: string | null;
      report: {
        thresholds: { latencyRule: string; unloadedP50Ms: number; latencyThresholdMs: number };
        levels: Array<{ concurrency: number; pass: boolean; slow: boolean }>;
      };
    };
    expect(probe.state).toBe('done');
    expect(stats.capacity).toBe(K);
    expect(stats.capacity_source).toBe('probe');
    expect(seconds).toBeLessThanOrEqual(120);
    expect(app.model.failed).toBeLessThanOrEqual(3);
    // The limit was relative: 4 x the unloaded p50 (about 3 s).
    expect(probe.report.thresholds.latencyRule).toBe('relative');
    expect(probe.report.thresholds.unloadedP50Ms).toBeGreaterThanOrEqual(S);
    expect(probe.report.thresholds.latencyThresholdMs).toBeCloseTo(
      4 * probe.report.thresholds.unloadedP50Ms,
      0,
    );
    // Level K passed, K + 1 failed: the gap was tested, each level paced by latency.
    const levels = probe.report.levels;
    expect(levels.find((l) => l.concurrency === K)?.pass).toBe(true);
    expect(levels.filter((l) => l.concurrency === K + 1).every((l) => !l.pass)).toBe(true);
    expect(levels.every((l) => l.slow)).toBe(true);
  }, 200_000);
});
