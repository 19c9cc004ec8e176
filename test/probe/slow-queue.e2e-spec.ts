import { performance } from 'node:perf_hooks';
import { BalancerModule, ProbeRunner } from '../../src';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';
import { poolStats } from '../harness/wait-for';

/**
 * A queue-shaped slow model (issue 19): 4 slots of 10 s, the rest wait in line, nothing fails
 * and latency only grows. `BalancerModule.forRoot()` defaults: the throughput knee decides,
 * within the default time budget. (Fastify here, Express in slow-knee.e2e-spec.ts: the
 * probe's accuracy does not depend on the adapter.)
 */
const K = 4;
const S = 10_000;

describe('startup probe of a slow queue-shaped endpoint (forRoot defaults)', () => {
  let app: ModelApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('finds capacity 4 +- 1 within 180 s', async () => {
    const t = performance.now();
    app = await startModelApp('fastify', { capacity: K, serviceTimeMs: S, shape: 'queue' }, [
      BalancerModule.forRoot({
        logger: false,
        endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
      }),
    ]);
    await app.app.get(ProbeRunner).whenIdle();
    const seconds = (performance.now() - t) / 1000;

    const stats = await poolStats(app.url, '/predict');
    const probe = (stats as unknown as { probe: unknown }).probe as {
      state: string;
      stop_reason: string | null;
    };
    expect(probe.state).toBe('done');
    expect(stats.capacity_source).toBe('probe');
    expect(Math.abs((stats.capacity ?? 0) - K)).toBeLessThanOrEqual(1);
    expect(seconds).toBeLessThanOrEqual(180);
    // Either the knee was found or the time budget ended the search: both say so.
    expect(['knee', 'deadline']).toContain(probe.stop_reason);
  }, 240_000);
});
