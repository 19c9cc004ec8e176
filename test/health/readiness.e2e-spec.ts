import { Controller, Get, HttpException, Module, Post } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  TerminusModule,
  type HealthCheckResult,
} from '@nestjs/terminus';
import { Balanced, BalancerHealthIndicator, BalancerModule, CapacityStore } from '../../src';
import { PLATFORMS } from '../harness/platforms';
import { WorkLatch, startHealthApp, waitFor, type HealthApp } from './health-fixtures';

const control = { health: 200, work: new WorkLatch() };

@Controller()
class AppController {
  @Post('work')
  @Balanced({ capacity: 2 })
  async work(): Promise<{ ok: true }> {
    await control.work.wait();
    return { ok: true };
  }

  @Get('health')
  health(): { status: string } {
    if (control.health !== 200) throw new HttpException({ status: 'down' }, control.health);
    return { status: 'ok' };
  }
}

/** The user's own readiness route, built on the exported indicator. */
@Controller()
class ReadyController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly balancer: BalancerHealthIndicator,
  ) {}

  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.balancer.isHealthy('lb')]);
  }
}

@Module({
  imports: [
    TerminusModule,
    BalancerModule.forRoot({
      probeOnStartup: false,
      healthCheckInterval: 0.1,
      healthFailureThreshold: 1,
      drainTimeout: 20,
      ui: { username: 'admin', password: 's3cret' },
    }),
  ],
  controllers: [AppController, ReadyController],
})
class ReadinessAppModule {}

interface TerminusBody {
  status: string;
  info?: Record<string, { status: string; state?: string }>;
  error?: Record<
    string,
    {
      status: string;
      state: string;
      reasons: string[];
      probing: string[];
      pools: Record<string, unknown>;
    }
  >;
  details: Record<
    string,
    { status: string; state: string; reasons: string[]; probing: string[]; gate: string }
  >;
}

async function get(
  url: string,
): Promise<{ status: number; body: TerminusBody; cache: string | null }> {
  const r = await fetch(url);
  return {
    status: r.status,
    body: (await r.json()) as TerminusBody,
    cache: r.headers.get('cache-control'),
  };
}

describe.each(PLATFORMS)('readiness (%s)', (platform) => {
  let h: HealthApp;

  beforeEach(async () => {
    control.health = 200;
    control.work.reset();
    control.work.open();
    h = await startHealthApp(platform, ReadinessAppModule);
  });
  afterEach(async () => {
    control.work.open();
    await h.close();
  });

  it('reports ready, probing, unhealthy and shutting_down on /balancer/health and through the indicator', async () => {
    const { url } = h;
    const store = h.app.get<CapacityStore>(CapacityStore);

    // Ready; and unauthenticated although the stats need credentials.
    const ready = await get(`${url}/balancer/health`);
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ok');
    expect(ready.body.info?.balancer).toMatchObject({ status: 'up', state: 'ready' });
    expect(ready.cache).toContain('no-store');
    expect((await fetch(`${url}/balancer/stats`)).status).toBe(401);
    const own = await get(`${url}/ready`);
    expect(own.status).toBe(200);
    expect(own.body.info?.lb).toMatchObject({
      status: 'up',
      state: 'ready',
      gate: 'open',
      store: 'reachable',
    });

    // A pool without a capacity yet: not ready, and the pool is named.
    await store.setCapacity('/work', null, 'probing');
    const probing = await get(`${url}/balancer/health`);
    expect(probing.status).toBe(503);
    expect(probing.body.status).toBe('error');
    expect(probing.body.error?.balancer).toMatchObject({
      status: 'down',
      state: 'probing',
      probing: ['/work'],
    });
    expect(probing.body.error?.balancer.pools).toEqual({
      '/work': { capacity: null, source: 'probing', probe: 'skipped' },
    });
    expect((await get(`${url}/ready`)).status).toBe(503);
    await store.setCapacity('/work', 2, 'manual');
    expect((await get(`${url}/balancer/health`)).status).toBe(200);

    // Unhealthy app: not ready until the health check passes again.
    control.health = 500;
    await waitFor(
      async () => (await get(`${url}/balancer/health`)).status === 503,
      10_000,
      'not ready while unhealthy',
    );
    const sick = await get(`${url}/balancer/health`);
    expect(sick.body.error?.balancer).toMatchObject({ state: 'unhealthy', reasons: ['unhealthy'] });
    control.health = 200;
    await waitFor(
      async () => (await get(`${url}/balancer/health`)).status === 200,
      10_000,
      'ready again',
    );

    // Shutdown: shutting_down at once, while an in-flight request still holds the app open.
    control.work.reset();
    const inFlight = fetch(`${url}/work`, { method: 'POST' });
    await waitFor(() => control.work.entered === 1, 10_000, 'request in flight');
    const closing = h.close();
    await waitFor(
      async () => (await get(`${url}/balancer/health`)).status === 503,
      5000,
      'not ready at shutdown',
    );
    const stopping = await get(`${url}/balancer/health`);
    expect(stopping.body.details.balancer).toMatchObject({
      status: 'down',
      state: 'shutting_down',
      gate: 'shutting_down',
    });
    const ownStopping = await get(`${url}/ready`);
    expect(ownStopping.status).toBe(503);
    expect(ownStopping.body.details.lb.state).toBe('shutting_down');
    control.work.open();
    expect((await inFlight).status).toBe(201);
    await closing;
  });
});
