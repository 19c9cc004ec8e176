import { Module } from '@nestjs/common';
import { BalancerModule, ProbeDeadlineError, ProbeRunner, ProbeService } from '../../src';
import { SimulatedModel } from '../../examples/simulated-model';
import { modelModule, PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';
import { CapturingLogger, startApp, type RunningApp } from '../harness/platforms';
import { poolStats } from '../harness/wait-for';

/**
 * The probe's time budget (`probe.maxDurationMs`): when it runs out the capacity is the largest
 * level proven within the limits, reported as such; none proven, the probe fails with reason
 * `deadline`. A 600 ms knee-shaped model (K = 2): levels 1 and 2 take about 3 s together, level
 * 4 longer than the budgets below leave.
 */
const MODEL = { capacity: 2, serviceTimeMs: 600, shape: 'knee' as const };

describe('probe time budget', () => {
  let app: ModelApp | RunningApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('ProbeService: the largest proven level, stop reason deadline, a warning', async () => {
    const model = await startModelApp('express', MODEL);
    app = model;
    const result = await new ProbeService().probe(
      { url: `${model.url}/predict`, method: 'POST', body: PREDICT_BODY },
      { maxDurationMs: 5000 },
    );
    expect(result.stopReason).toBe('deadline');
    expect(result.maxConcurrency).toBe(2);
    expect(result.durationMs).toBeLessThan(6000);
    expect(result.levels.filter((l) => l.pass).map((l) => l.concurrency)).toEqual([1, 2]);
    expect(result.warnings.join('\n')).toMatch(/time budget .*5000 ms.* ran out/);
  });

  it('ProbeService: no level proven in time is a ProbeDeadlineError', async () => {
    const model = await startModelApp('express', MODEL);
    app = model;
    const err = await new ProbeService()
      .probe(
        { url: `${model.url}/predict`, method: 'POST', body: PREDICT_BODY },
        { maxDurationMs: 1000 },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProbeDeadlineError);
    expect((err as ProbeDeadlineError).reason).toBe('deadline');
    expect((err as Error).message).toMatch(/raise probe\.maxDurationMs/);
  });

  it('startup probe: stats and the log say the budget ran out', async () => {
    const model = new SimulatedModel(MODEL);
    @Module({
      imports: [
        modelModule(model, [
          BalancerModule.forRoot({
            healthEndpoint: false,
            probe: { maxDurationMs: 5000 },
            endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
          }),
        ]),
      ],
    })
    class AppModule {}
    const logger = new CapturingLogger();
    app = await startApp('express', AppModule, { logger });
    await app.app.get(ProbeRunner).whenIdle();
    const stats = await poolStats(app.url, '/predict');
    const probe = (stats as unknown as { probe: { state: string; stop_reason: string } }).probe;
    expect(stats.capacity).toBe(2);
    expect(probe).toMatchObject({ state: 'done', stop_reason: 'deadline' });
    expect(logger.messages('warn').join('\n')).toMatch(/\/predict: the time budget/);
  });
});
