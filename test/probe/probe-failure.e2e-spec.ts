import { Controller, Get, Module, Param } from '@nestjs/common';
import { Balanced, BalancerModule, ProbeRunner } from '../../src';
import { SimulatedModel } from '../../examples/simulated-model';
import { modelModule, PREDICT_BODY, startModelApp } from '../fixtures/model-app';
import { CapturingLogger, PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { poolStats } from '../harness/wait-for';

/**
 * A startup probe that fails (every call answers 500 at concurrency 1, the endpoint refuses the
 * probe's body, a parameterized route has no `probe.path`) leaves the pool at capacity 1, never
 * `defaultCapacity` above what was measured, and says why in stats and the log. No machine speed
 * is read here (what a probe finds is test/probe/startup-probe.e2e-spec.ts, in the timing pass).
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

interface ProbeStats {
  state: string;
  error: string | null;
}

describe.each(PLATFORMS)('startup probe the endpoint rejects, on %s', (platform) => {
  it('fails clearly and leaves capacity 1, not defaultCapacity', async () => {
    // Knee-shaped like the timing suite's model; the probe's body is refused with 422.
    const app = await startModelApp(
      platform,
      { capacity: 4, serviceTimeMs: 40, shape: 'knee', slowdown: 10 },
      [
        BalancerModule.forRoot({
          healthEndpoint: false,
          latencyThresholdMs: 200,
          probe: { warmupMs: 150, levelDurationMs: 500, minSamples: 20, levelLatencies: 2 },
          defaultCapacity: 5,
          endpoints: { '/predict': { method: 'POST', body: { wrong: true } } },
        }),
      ],
    );
    try {
      await app.app.get(ProbeRunner).whenIdle();
      const stats = await poolStats(app.url, '/predict');
      expect(stats.capacity).toBe(1);
      expect(stats.capacity_source).toBe('default');
      const probe = (stats as unknown as { probe: ProbeStats }).probe;
      expect(probe.state).toBe('failed');
      expect(probe.error).toMatch(/answered 422/);
      expect(probe.error).toMatch(/Capacity 1 \(no level was proven\)/);
    } finally {
      await app.close();
    }
  });
});

@Controller('items')
class ItemsController {
  @Get(':id')
  @Balanced()
  item(@Param('id') id: string): { id: string } {
    return { id };
  }
}

@Module({
  imports: [BalancerModule.forRoot({ healthEndpoint: false, defaultCapacity: 6 })],
  controllers: [ItemsController],
})
class ParamAppModule {}

describe('startup probe: parameterized route without probe.path', () => {
  it('fails with a message naming the missing path and leaves capacity 1', async () => {
    const running = await startApp('express', ParamAppModule);
    try {
      await running.app.get(ProbeRunner).whenIdle();
      const stats = (await poolStats(running.url, '/items/:id')) as unknown as {
        capacity: number;
        capacity_source: string;
        probe: ProbeStats;
      };
      expect(stats.capacity).toBe(1);
      expect(stats.capacity_source).toBe('default');
      expect(stats.probe.state).toBe('failed');
      expect(stats.probe.error).toMatch(/path/);
    } finally {
      await running.close();
    }
  });
});
