import { Controller, Get, Headers, Module, Post, Query } from '@nestjs/common';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import {
  Balanced,
  BalancerModule,
  BalancerService,
  CostReservation,
  InvalidCostError,
} from '../../src';
import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { Latch, waitFor } from '../harness/wait-for';

/** Requests hold until the test opens their latch (by `x-id`); units seen in flight. */
const gates = new Map<string, Latch>();
const seen = { inFlight: 0, peak: 0 };

function gate(id: string): Latch {
  let l = gates.get(id);
  if (!l) gates.set(id, (l = new Latch()));
  return l;
}

async function hold(id: string, units: number): Promise<{ id: string }> {
  seen.inFlight += units;
  seen.peak = Math.max(seen.peak, seen.inFlight);
  try {
    await gate(id).promise;
  } finally {
    seen.inFlight -= units;
  }
  return { id };
}

const estimate = (req: IncomingMessage): number => {
  const v = req.headers['x-est'];
  if (v === 'throw') throw new Error('unreadable estimate');
  return v === 'nan' ? Number.NaN : Number(v);
};

@Controller()
class CostController {
  constructor(private readonly balancer: BalancerService) {}

  /** Units from a cost function of the request (an estimate from a header). */
  @Post('gen')
  @Balanced({ capacity: 10, cost: estimate })
  gen(@Headers('x-id') id: string, @Headers('x-est') est: string): Promise<{ id: string }> {
    return hold(id, Number(est));
  }

  /** Admitted on its estimate, then corrected to the real size (`x-real`) before the work. */
  @Post('fix')
  @Balanced({ capacity: 10, pool: 'fix', cost: estimate })
  async fix(
    @Headers('x-id') id: string,
    @Headers('x-real') real: string,
    @CostReservation() reservation: CostReservation,
  ): Promise<{ id: string; units: number }> {
    await reservation.correct(Number(real));
    await hold(id, reservation.units);
    return { id, units: reservation.units };
  }

  /** Units read from a trusted header (configured in `endpoints`, with maxQueueCost). */
  @Post('hdr')
  hdr(@Headers('x-id') id: string, @Headers('x-tokens') tokens: string): Promise<{ id: string }> {
    return hold(id, Number(tokens));
  }

  /** `run()` with a cost; its reservation is fn's second argument. */
  @Get('run')
  async run(@Query('cost') cost: string, @Query('id') id: string): Promise<unknown> {
    try {
      return await this.balancer.run('fix', (_signal, reservation) => hold(id, reservation.units), {
        cost: Number(cost),
      });
    } catch (error) {
      return { error: error instanceof InvalidCostError ? 'InvalidCostError' : String(error) };
    }
  }
}

@Module({
  imports: [
    BalancerModule.forRoot({
      probeOnStartup: false,
      healthEndpoint: false,
      endpoints: { '/hdr': { capacity: 10, costHeader: 'x-tokens', maxQueueCost: 12 } },
    }),
  ],
  controllers: [CostController],
})
class CostAppModule {}

interface UnitsStats {
  capacity: number;
  active_requests: number;
  queued: number;
  rejected: number;
  units?: { active: number; queued: number; admitted: number; max_queue_cost: number | null };
}

async function stats(url: string, pool: string): Promise<UnitsStats> {
  const body = (await (await fetch(`${url}/balancer/stats`)).json()) as {
    endpoints: Record<string, UnitsStats>;
  };
  return body.endpoints[pool];
}

function post(url: string, path: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${url}${path}`, { method: 'POST', headers });
}

describe.each(PLATFORMS)('cost units over HTTP (%s)', (platform) => {
  let app: RunningApp;
  let n = 0;
  const id = (): string => `${platform}-${n++}`;

  beforeAll(async () => {
    app = await startApp(platform, CostAppModule);
  });
  afterAll(async () => {
    for (const l of gates.values()) l.open();
    await app.close();
  });
  beforeEach(() => {
    seen.peak = 0;
  });

  it('a cost function counts units: a request waits until its units fit, stats show units', async () => {
    const [a, b] = [id(), id()];
    const first = post(app.url, '/gen', { 'x-id': a, 'x-est': '6' });
    await waitFor(async () => (await stats(app.url, '/gen')).units?.active === 6);
    const second = post(app.url, '/gen', { 'x-id': b, 'x-est': '6' });
    await waitFor(async () => (await stats(app.url, '/gen')).units?.queued === 6);
    expect(await stats(app.url, '/gen')).toMatchObject({
      capacity: 10,
      active_requests: 1,
      queued: 1,
      units: { active: 6, queued: 6, max_queue_cost: null },
    });
    gate(a).open();
    expect((await first).status).toBe(201);
    await waitFor(async () => (await stats(app.url, '/gen')).units?.active === 6);
    gate(b).open();
    expect((await second).status).toBe(201);
    expect(seen.peak).toBeLessThanOrEqual(10);
    const metrics = await (await fetch(`${app.url}/balancer/stats`)).json();
    expect(metrics).toBeDefined();
  });

  it('a cost function that throws or returns no positive number: 400 invalid_cost, no unit held', async () => {
    for (const est of ['throw', 'nan', '0', '-4', 'Infinity', '2e12', 'abc']) {
      const res = await post(app.url, '/gen', { 'x-id': id(), 'x-est': est });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ reason: 'invalid_cost' });
    }
    expect((await stats(app.url, '/gen')).units).toMatchObject({ active: 0, queued: 0 });
  });

  it('cost_header: malformed, missing, negative or huge values are 400 invalid_cost, never a leak', async () => {
    const bad = ['abc', '', '-5', '0', 'NaN', 'Infinity', '1e3', '0x10', '99999999999999', '5 5'];
    for (const tokens of bad) {
      const res = await post(app.url, '/hdr', { 'x-id': id(), 'x-tokens': tokens });
      expect([tokens, res.status]).toEqual([tokens, 400]);
      const body = (await res.json()) as { reason: string; message: string };
      expect(body.reason).toBe('invalid_cost');
      expect(body.message).toContain('x-tokens');
    }
    const missing = await post(app.url, '/hdr', { 'x-id': id() });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { message: string }).message).toContain('missing');
    expect((await stats(app.url, '/hdr')).units).toMatchObject({ active: 0, queued: 0 });
    // A fraction rounds up, and a valid request is served as usual.
    const ok = id();
    const res = post(app.url, '/hdr', { 'x-id': ok, 'x-tokens': '2.5' });
    await waitFor(async () => (await stats(app.url, '/hdr')).units?.active === 3);
    gate(ok).open();
    expect((await res).status).toBe(201);
  });

  it('maxQueueCost: units beyond it are refused 503 queue_cost_full with Retry-After', async () => {
    const [a, b, c] = [id(), id(), id()];
    const full = post(app.url, '/hdr', { 'x-id': a, 'x-tokens': '10' });
    await waitFor(async () => (await stats(app.url, '/hdr')).units?.active === 10);
    const queued = post(app.url, '/hdr', { 'x-id': b, 'x-tokens': '8' });
    await waitFor(async () => (await stats(app.url, '/hdr')).units?.queued === 8);
    const refused = await post(app.url, '/hdr', { 'x-id': c, 'x-tokens': '5' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({ reason: 'queue_cost_full' });
    expect((await stats(app.url, '/hdr')).units).toMatchObject({ max_queue_cost: 12 });
    gate(a).open();
    gate(b).open();
    expect([(await full).status, (await queued).status]).toEqual([201, 201]);
  });

  it('@CostReservation() corrects the units while the handler runs: freed units admit a waiter', async () => {
    const [a, b] = [id(), id()];
    // Admitted on an estimate of 9, corrected to 3 before the work starts.
    const first = post(app.url, '/fix', { 'x-id': a, 'x-est': '9', 'x-real': '3' });
    await waitFor(async () => seen.inFlight === 3);
    expect((await stats(app.url, 'fix')).units?.active).toBe(3);
    // 3 + 7 = 10: admitted while the first still runs.
    const second = post(app.url, '/fix', { 'x-id': b, 'x-est': '7', 'x-real': '7' });
    await waitFor(async () => (await stats(app.url, 'fix')).units?.active === 10);
    expect(seen.inFlight).toBe(10);
    gate(a).open();
    gate(b).open();
    expect(await (await first).json()).toEqual({ id: a, units: 3 });
    expect(await (await second).json()).toEqual({ id: b, units: 7 });
    expect((await stats(app.url, 'fix')).units).toMatchObject({ active: 0, queued: 0 });
  });

  it('run(pool, fn, { cost }) holds the units; a bad cost rejects with InvalidCostError', async () => {
    const r = id();
    const running = fetch(`${app.url}/run?cost=4&id=${r}`);
    await waitFor(async () => (await stats(app.url, 'fix')).units?.active === 4);
    gate(r).open();
    expect(await (await running).json()).toEqual({ id: r });
    for (const cost of ['-1', '0', 'NaN', 'abc']) {
      const res = await fetch(`${app.url}/run?cost=${cost}&id=${id()}`);
      expect(await res.json()).toEqual({ error: 'InvalidCostError' });
    }
    expect((await stats(app.url, 'fix')).units).toMatchObject({ active: 0, queued: 0 });
  });
});

describe.each(PLATFORMS)('cost_header from balancer.yml (%s)', (platform) => {
  it('reads cost_header and max_queue_cost; a bad YAML value names the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cost-yml-'));
    const file = join(dir, 'balancer.yml');
    writeFileSync(
      file,
      [
        'probe_on_startup: false',
        'health_endpoint: false',
        'endpoints:',
        '  /hdr:',
        '    capacity: 10',
        '    cost_header: x-tokens',
        '    max_queue_cost: 30',
      ].join('\n'),
    );
    @Module({ imports: [BalancerModule.forRoot(file)], controllers: [CostController] })
    class YamlModule {}
    const app = await startApp(platform, YamlModule);
    try {
      const a = `yml-${platform}`;
      const res = post(app.url, '/hdr', { 'x-id': a, 'x-tokens': '7' });
      await waitFor(async () => (await stats(app.url, '/hdr')).units?.active === 7);
      expect((await stats(app.url, '/hdr')).units).toMatchObject({ max_queue_cost: 30 });
      gate(a).open();
      expect((await res).status).toBe(201);
    } finally {
      await app.close();
    }
    writeFileSync(
      file,
      'endpoints:\n  /hdr:\n    max_queue_cost: -2\n    cost_header: "x tokens"\n',
    );
    @Module({ imports: [BalancerModule.forRoot(file)], controllers: [CostController] })
    class BadYamlModule {}
    const error = await startApp(platform, BadYamlModule).then(
      () => new Error('started'),
      (e: unknown) => e as Error,
    );
    expect(error.name).toBe('BalancerConfigError');
    expect(error.message).toContain(
      'endpoints./hdr.max_queue_cost (line 3) must be a positive integer (units)',
    );
    expect(error.message).toContain(
      'endpoints./hdr.cost_header (line 4) must be an HTTP header name',
    );
  });
});
