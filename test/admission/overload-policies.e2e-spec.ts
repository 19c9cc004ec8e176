import { Controller, Get, Module, Post, Query } from '@nestjs/common';
import { Balanced, BalancerModule } from '../../src';
import { CapturingLogger, PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

/*
 * The overload policies wired end to end on both adapters with the memory store: options and
 * headers reach the store through every admission path (Fastify's early admission and the guard
 * for @Balanced() routes, the interceptor for an endpoints-only route), and the store's answers
 * come back as 503s with their reasons and Retry-After. The policies' properties themselves
 * (fairness bounds, aging, Redis across workers) are proven in the contract and property suites.
 */

/** Service time of `/target` (simulated work) and the closed-loop clients that overload it. */
const SERVICE_MS = 100;
const CLIENTS = 8;
const TARGET_MS = 20;

const state = { hold: new Latch(), started: [] as string[] };
function reset(): void {
  state.hold = new Latch();
  state.started = [];
}

async function held(id: string): Promise<{ id: string }> {
  state.started.push(id);
  await state.hold.promise;
  return { id };
}

@Controller()
class OverloadController {
  @Post('tenants')
  @Balanced({ capacity: 1, tenantHeader: 'x-api-key', maxQueuePerTenant: 2 })
  tenants(@Query('id') id: string) {
    return held(id);
  }

  /** Watched only through `endpoints` (tenant_header and max_queue_per_tenant as in YAML). */
  @Post('yaml-tenants')
  yamlTenants(@Query('id') id: string) {
    return held(id);
  }

  @Get('priority')
  @Balanced({ capacity: 1, priorityHeader: 'x-priority' })
  priority(@Query('id') id: string) {
    return held(id);
  }

  @Get('target')
  @Balanced({ capacity: 1, queueTargetMs: TARGET_MS })
  async target(): Promise<string> {
    await new Promise((r) => setTimeout(r, SERVICE_MS));
    return 'ok';
  }

  @Get('throwing')
  @Balanced({
    capacity: 2,
    tenant: () => {
      throw new Error('tenant lookup failed');
    },
    priority: () => {
      throw new Error('priority lookup failed');
    },
  })
  throwing(@Query('id') id: string) {
    return held(id);
  }
}

@Module({
  imports: [
    BalancerModule.forRoot({
      healthEndpoint: false,
      probeOnStartup: false,
      queueTimeout: 30,
      endpoints: {
        '/yaml-tenants': { capacity: 1, tenantHeader: 'X-Api-Key', maxQueuePerTenant: 2 },
      },
    }),
  ],
  controllers: [OverloadController],
})
class OverloadAppModule {}

interface Outcome {
  status: number;
  reason?: string;
  retryAfter: string | null;
  ms: number;
}

async function timed(url: string): Promise<Outcome> {
  const start = performance.now();
  const res = await fetch(url);
  const body = (await res.json().catch(() => ({}))) as { reason?: string };
  return {
    status: res.status,
    reason: body.reason,
    retryAfter: res.headers.get('retry-after'),
    ms: performance.now() - start,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describe.each(PLATFORMS)('overload policies on %s (memory store)', (platform) => {
  let app: RunningApp;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    app = await startApp(platform, OverloadAppModule, { logger });
  });
  afterAll(async () => {
    state.hold.open();
    await app.close();
  });
  beforeEach(() => reset());
  afterEach(() => state.hold.open());

  it.each(['/tenants', '/yaml-tenants'])(
    '%s: a tenant header with maxQueuePerTenant answers 503 tenant_queue_full for that tenant only',
    async (path) => {
      const send = (id: string, key: string) =>
        fetch(`${app.url}${path}?id=${id}`, { method: 'POST', headers: { 'x-api-key': key } });
      const until = (what: 'active_requests' | 'queued', n: number) =>
        waitFor(async () => (await poolStats(app.url, path))[what] === n, 10_000, `${what} ${n}`);

      const a1 = send('a1', 'acme');
      await until('active_requests', 1);
      const a2 = send('a2', 'acme');
      await until('queued', 1);
      const a3 = send('a3', 'acme');
      await until('queued', 2);

      const a4 = await send('a4', 'acme');
      expect(a4.status).toBe(503);
      expect(a4.headers.get('retry-after')).toBe('30');
      expect(await a4.json()).toMatchObject({ statusCode: 503, reason: 'tenant_queue_full' });

      // Another tenant still queues, and is served round-robin: next to acme's first waiter.
      const b1 = send('b1', 'beta');
      await until('queued', 3);
      state.hold.open();
      expect((await Promise.all([a1, a2, a3, b1])).map((r) => r.status)).toEqual([
        201, 201, 201, 201,
      ]);
      expect(state.started).toEqual(['a1', 'a2', 'b1', 'a3']);
      expect((await poolStats(app.url, path)).rejected).toBe(1);
    },
  );

  it('a priority header makes a high request go next', async () => {
    const send = (id: string, priority?: number) =>
      fetch(`${app.url}/priority?id=${id}`, {
        headers: priority === undefined ? {} : { 'x-priority': String(priority) },
      });
    const pending = [send('first')];
    await waitFor(async () => (await poolStats(app.url, '/priority')).active_requests === 1);
    for (const [i, id] of ['low1', 'low2', 'low3'].entries()) {
      pending.push(send(id));
      await waitFor(async () => (await poolStats(app.url, '/priority')).queued === i + 1);
    }
    pending.push(send('high', 5));
    await waitFor(async () => (await poolStats(app.url, '/priority')).queued === 4);
    state.hold.open();
    expect((await Promise.all(pending)).every((r) => r.status === 200)).toBe(true);
    expect(state.started).toEqual(['first', 'high', 'low1', 'low2', 'low3']);
  });

  it('queueTargetMs under standing overload answers 503 shed at once, with Retry-After', async () => {
    // CLIENTS closed-loop clients on a capacity of 1: every request granted from the queue
    // waited about (CLIENTS - 1) x SERVICE_MS = 700 ms, far above the 20 ms target, so after the
    // interval (100 ms) the queue counts as standing and a request that would queue is shed.
    // A client stops at its first shed; the run ends after 3 sheds (or at the deadline).
    const served: Outcome[] = [];
    const shed: Outcome[] = [];
    const other: Outcome[] = [];
    const deadline = Date.now() + 20_000;
    const client = async (): Promise<void> => {
      while (shed.length < 3 && Date.now() < deadline) {
        const o = await timed(`${app.url}/target`);
        if (o.status === 200) served.push(o);
        else if (o.status === 503 && o.reason === 'shed') return void shed.push(o);
        else return void other.push(o);
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));

    expect(other).toEqual([]);
    expect(shed.length).toBeGreaterThanOrEqual(3);
    for (const o of shed) {
      expect(o.retryAfter).toMatch(/^[1-9][0-9]*$/);
    }
    // A shed request never waits in the queue; the served ones waited behind up to
    // CLIENTS - 1 others. Compared within this run, so a slow machine slows both alike.
    expect(median(shed.map((o) => o.ms))).toBeLessThan(median(served.map((o) => o.ms)));
    const stats = await poolStats(app.url, '/target');
    expect(stats.rejected).toBe(shed.length);
  });

  it('a tenant or priority function that throws never fails the request; logged once per pool', async () => {
    const send = (id: string) => fetch(`${app.url}/throwing?id=${id}`);
    const pending = [send('1'), send('2'), send('3')];
    await waitFor(async () => (await poolStats(app.url, '/throwing')).queued === 1);
    pending.push(send('4'));
    await waitFor(async () => (await poolStats(app.url, '/throwing')).queued === 2);
    state.hold.open();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const errors = logger.messages('error');
    expect(errors.filter((m) => m.includes('the tenant function threw'))).toEqual([
      'pool "/throwing": the tenant function threw (tenant lookup failed); such requests count as the default tenant (logged once per pool)',
    ]);
    expect(errors.filter((m) => m.includes('the priority function threw'))).toHaveLength(1);
  });
});
