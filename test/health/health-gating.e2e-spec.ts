import { Controller, Get, Headers, HttpException, Module, Post, type Type } from '@nestjs/common';
import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { HealthIndicatorService, TerminusModule } from '@nestjs/terminus';
import { AdmissionGate, Balanced, BalancerModule, type BalancerOptions } from '../../src';
import { ProbeTokens } from '../../src/admission/probe-tokens';
import { HEALTH_INTERVAL_NAME, HealthGateService } from '../../src/health/health-gate.service';
import { PLATFORMS } from '../harness/platforms';
import { WorkLatch, startHealthApp, waitFor, type HealthApp } from './health-fixtures';

/** What the test app's routes do; reset before every test. */
const control = {
  /** Status the health route answers with. */
  health: 200,
  /** Answer 500 for this many more health calls, then `health` again. */
  failNext: 0,
  /** Status of every health call, in order. */
  hits: [] as number[],
  /** The `x-balancer-probe` header of every health call. */
  probeHeaders: new Set<string | undefined>(),
  /** `true` = the user's Terminus indicator is up. */
  model: true,
  work: new WorkLatch(),
};

function resetControl(): void {
  control.health = 200;
  control.failNext = 0;
  control.hits = [];
  control.probeHeaders.clear();
  control.model = true;
  control.work.reset();
  control.work.open();
}

function healthAnswer(probe: string | undefined): { status: string } {
  control.probeHeaders.add(probe);
  let status = control.health;
  if (control.failNext > 0) {
    control.failNext--;
    status = 500;
  }
  control.hits.push(status);
  if (status !== 200) throw new HttpException({ status: 'down' }, status);
  return { status: 'ok' };
}

@Controller()
class WorkController {
  @Post('work')
  @Balanced({ capacity: 1 })
  async work(): Promise<{ ok: true }> {
    await control.work.wait();
    return { ok: true };
  }

  @Get('free')
  free(): { ok: true } {
    return { ok: true };
  }
}

@Controller()
class HealthController {
  @Get('health')
  health(@Headers('x-balancer-probe') probe?: string): { status: string } {
    return healthAnswer(probe);
  }
}

/** A health route someone put under admission control: it must never lock itself out. */
@Controller()
class WatchedHealthController {
  @Get('health')
  @Balanced({ capacity: 1 })
  health(@Headers('x-balancer-probe') probe?: string): { status: string } {
    return healthAnswer(probe);
  }
}

function appModule(
  options: BalancerOptions,
  controllers: Type[] = [WorkController, HealthController],
  imports: Type[] = [],
): Type {
  @Module({
    imports: [...imports, BalancerModule.forRoot({ probeOnStartup: false, ...options })],
    controllers,
  })
  class TestAppModule {}
  return TestAppModule;
}

/** Fast checks; everything else at its default. */
const FAST = { healthCheckInterval: 0.1, healthTimeout: 2 } as const;

function trailing(values: number[], value: number): number {
  let n = 0;
  for (let i = values.length - 1; i >= 0 && values[i] === value; i--) n++;
  return n;
}

async function post(url: string): Promise<Response> {
  return fetch(`${url}/work`, { method: 'POST' });
}

interface Stats {
  healthy: boolean;
  endpoints: Record<string, { queued: number; active_requests: number }>;
}

async function stats(url: string): Promise<Stats> {
  return (await (await fetch(`${url}/balancer/stats`)).json()) as Stats;
}

describe.each(PLATFORMS)('health gating (%s)', (platform) => {
  let h: HealthApp | undefined;

  beforeEach(() => resetControl());
  afterEach(async () => {
    control.work.open();
    await h?.close();
    h = undefined;
  });

  /** Gate transitions with the health calls seen at that moment. */
  function recordTransitions(app: HealthApp): Array<{ open: boolean; hits: number[] }> {
    const seen: Array<{ open: boolean; hits: number[] }> = [];
    app.app.get(AdmissionGate).onChange((open) => seen.push({ open, hits: [...control.hits] }));
    return seen;
  }

  it('closes watched routes after the configured failures in a row, leaves others alone, and reopens', async () => {
    h = await startHealthApp(
      platform,
      appModule({ ...FAST, healthFailureThreshold: 3, healthRecoveryThreshold: 2 }),
    );
    const { url } = h;
    const health = h.app.get(HealthGateService);
    await waitFor(
      () => health.status().http === 'active' && health.status().checks >= 1,
      10_000,
      'first health check',
    );
    const transitions = recordTransitions(h);

    // Two failures in a row stay below the threshold of three: the gate must not move.
    const before = control.hits.length;
    control.failNext = 2;
    await waitFor(() => control.hits.length >= before + 5, 10_000, 'two failures and three passes');
    expect(control.hits.slice(before, before + 2)).toEqual([500, 500]);
    expect(transitions).toEqual([]);
    expect((await post(url)).status).toBe(201);

    control.health = 500;
    await waitFor(() => transitions.length === 1, 10_000, 'gate closed');
    expect(transitions[0].open).toBe(false);
    expect(trailing(transitions[0].hits, 500)).toBe(3);

    const rejected = await post(url);
    expect(rejected.status).toBe(503);
    expect(rejected.headers.get('retry-after')).toBe('1'); // ceil(healthCheckInterval)
    expect(((await rejected.json()) as { statusCode: number }).statusCode).toBe(503);
    expect((await fetch(`${url}/free`)).status).toBe(200);
    expect((await stats(url)).healthy).toBe(false);

    control.health = 200;
    await waitFor(() => transitions.length === 2, 10_000, 'gate reopened');
    expect(transitions[1].open).toBe(true);
    expect(trailing(transitions[1].hits, 200)).toBe(2);
    expect((await post(url)).status).toBe(201);
    expect((await stats(url)).healthy).toBe(true);
    // Every check carried the probe secret, so no admission in front of the route can block it.
    expect([...control.probeHeaders]).toEqual([h.app.get(ProbeTokens).local]);
  });

  it('answers requests queued when health fails with 503 at once, not 504 later', async () => {
    h = await startHealthApp(
      platform,
      appModule({ ...FAST, healthFailureThreshold: 1, queueTimeout: 20 }),
    );
    const { url } = h;
    control.work.reset();
    const inFlight = post(url);
    await waitFor(() => control.work.entered === 1, 10_000, 'first request in the handler');
    const queued = [post(url), post(url)];
    await waitFor(
      async () => (await stats(url)).endpoints['/work'].queued === 2,
      10_000,
      'two requests queued',
    );

    const started = Date.now();
    control.health = 500;
    const answers = await Promise.all(queued);
    expect(answers.map((r) => r.status)).toEqual([503, 503]);
    for (const r of answers) expect(r.headers.get('retry-after')).toBe('1');
    // Well before the 20 s queue timeout; generous for a noisy machine.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(control.work.entered).toBe(1);

    // Health does not cut off what is already running.
    control.work.open();
    expect((await inFlight).status).toBe(201);
    control.health = 200;
    await waitFor(async () => (await stats(url)).healthy, 10_000, 'recovered');
    expect((await post(url)).status).toBe(201);
  });

  it('never gates a watched health route, so it cannot lock itself out', async () => {
    h = await startHealthApp(
      platform,
      appModule({ ...FAST, healthFailureThreshold: 1 }, [WorkController, WatchedHealthController]),
    );
    const { url } = h;
    expect(h.logs.warnings(/GET \/health is the health endpoint; it is never gated/)).toHaveLength(
      1,
    );
    expect(Object.keys((await stats(url)).endpoints)).toEqual(['/work']);
    const transitions = recordTransitions(h);

    control.health = 500;
    await waitFor(() => transitions.length === 1, 10_000, 'gate closed');
    expect((await post(url)).status).toBe(503);
    // The route itself still answers with its own status, never the balancer's 503.
    const direct = await Promise.all([1, 2, 3].map(() => fetch(`${url}/health`)));
    expect(direct.map((r) => r.status)).toEqual([500, 500, 500]);

    control.health = 200;
    await waitFor(() => transitions.length === 2, 10_000, 'gate reopened');
    expect(transitions[1].open).toBe(true);
    expect((await post(url)).status).toBe(201);
  });

  it('reports a missing health route once at startup and never answers 503 for it', async () => {
    h = await startHealthApp(
      platform,
      appModule(
        {
          ...FAST,
          healthFailureThreshold: 1,
          // A passing indicator keeps the schedule running, so later checks could gate if 404 counted.
          healthIndicators: [() => ({ model: { status: 'up' } })],
        },
        [WorkController],
      ),
    );
    const { url, logs } = h;
    const health = h.app.get(HealthGateService);
    const transitions = recordTransitions(h);
    await waitFor(() => health.status().http === 'missing', 10_000, 'health route found missing');
    const checksThen = health.status().checks;
    await waitFor(() => health.status().checks >= checksThen + 5, 10_000, 'five more checks');

    const warnings = logs.warnings('GET /health answered 404');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('health_endpoint: false');
    expect(transitions).toEqual([]);
    expect(health.status().healthy).toBe(true);
    expect((await post(url)).status).toBe(201);
  });

  it('stops checking when the health route is missing and nothing else is configured', async () => {
    h = await startHealthApp(
      platform,
      appModule({ ...FAST, healthFailureThreshold: 1 }, [WorkController]),
    );
    const health = h.app.get(HealthGateService);
    await waitFor(() => health.status().http === 'missing', 10_000, 'health route found missing');
    expect(health.status().scheduler).toBe('none');
    expect(h.logs.warnings('GET /health answered 404')).toHaveLength(1);
    expect((await post(h.url)).status).toBe(201);
    expect((await stats(h.url)).healthy).toBe(true);
  });

  it("lets the user's Terminus indicators drive the gate", async () => {
    @Module({
      imports: [
        BalancerModule.forRootAsync({
          imports: [TerminusModule],
          inject: [HealthIndicatorService],
          useFactory: (indicator: HealthIndicatorService) => ({
            ...FAST,
            probeOnStartup: false,
            healthEndpoint: false,
            healthFailureThreshold: 1,
            healthIndicators: [
              () =>
                control.model
                  ? indicator.check('model').up()
                  : indicator.check('model').down({ reason: 'not loaded' }),
            ],
          }),
        }),
      ],
      controllers: [WorkController],
    })
    class IndicatorAppModule {}

    h = await startHealthApp(platform, IndicatorAppModule);
    const { url } = h;
    const health = h.app.get(HealthGateService);
    expect(health.status().http).toBe('off');
    await waitFor(() => health.status().checks >= 1, 10_000, 'first check');
    const transitions = recordTransitions(h);
    expect((await post(url)).status).toBe(201);

    control.model = false;
    await waitFor(() => transitions.length === 1, 10_000, 'gate closed by the indicator');
    expect(health.status().lastFailures).toEqual(['indicator(s) down: model']);
    expect(
      h.logs.warnings(/health check failed 1 time\(s\) in a row \(indicator\(s\) down: model\)/),
    ).toHaveLength(1);
    const rejected = await post(url);
    expect(rejected.status).toBe(503);
    expect(rejected.headers.get('retry-after')).toBe('1');

    control.model = true;
    await waitFor(() => transitions.length === 2, 10_000, 'gate reopened');
    expect((await post(url)).status).toBe(201);
  });

  it("registers its job with the host's SchedulerRegistry and removes it at shutdown", async () => {
    h = await startHealthApp(
      platform,
      appModule(
        { ...FAST },
        [WorkController, HealthController],
        [ScheduleModule.forRoot() as unknown as Type],
      ),
    );
    const registry = h.app.get(SchedulerRegistry);
    const health = h.app.get(HealthGateService);
    expect(health.status().scheduler).toBe('schedule');
    expect(registry.getIntervals()).toContain(HEALTH_INTERVAL_NAME);
    const checks = health.status().checks;
    await waitFor(() => health.status().checks >= checks + 3, 10_000, 'scheduled checks');
    await h.close();
    expect(registry.doesExist('interval', HEALTH_INTERVAL_NAME)).toBe(false);
  });

  it('uses its own timer when the host has no ScheduleModule', async () => {
    h = await startHealthApp(platform, appModule({ ...FAST }));
    const health = h.app.get(HealthGateService);
    expect(health.status().scheduler).toBe('timer');
    const checks = health.status().checks;
    await waitFor(() => health.status().checks >= checks + 3, 10_000, 'timer checks');
  });
});
