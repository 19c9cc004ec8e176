import { Module } from '@nestjs/common';
import { BalancerModule, ProbeRunner } from '../../src';
import { SimulatedModel } from '../../examples/simulated-model';
import { modelModule, PREDICT_BODY } from '../fixtures/model-app';
import { CapturingLogger, PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { poolStats } from '../harness/wait-for';

/**
 * A probe that fails at concurrency 1 (every call answers 500) leaves the pool at capacity 1,
 * never `defaultCapacity` above what was measured, and says why in stats and the log.
 */
describe.each(PLATFORMS)('failed startup probe on %s', (platform) => {
  let app: RunningApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('caps the pool at 1 and reports the reason in stats and the log', async () => {
    // failAt 1: every call "runs out of memory".
    const model = new SimulatedModel({ capacity: 4, serviceTimeMs: 5, failAt: 1 });
    @Module({
      imports: [
        modelModule(model, [
          BalancerModule.forRoot({
            healthEndpoint: false,
            defaultCapacity: 8,
            probe: { warmupMs: 50, levelDurationMs: 200 },
            endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
          }),
        ]),
      ],
    })
    class AppModule {}
    const logger = new CapturingLogger();
    app = await startApp(platform, AppModule, { logger });
    await app.app.get(ProbeRunner).whenIdle();

    const stats = await poolStats(app.url, '/predict');
    const probe = (stats as unknown as { probe: unknown }).probe as {
      state: string;
      error: string | null;
    };
    expect(stats.capacity).toBe(1);
    expect(probe.state).toBe('failed');
    expect(probe.error).toMatch(/fails at concurrency 1: error rate 100\.0 %/);
    expect(probe.error).toMatch(/Capacity 1 \(no level was proven\)/);
    const errors = logger.messages('error').filter((m) => m.includes('/predict: probe failed'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/500/);
    expect(errors[0]).toMatch(/set a manual capacity/);
  });
});
