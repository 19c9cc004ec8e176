import { Controller, Headers, Module, Post, type Type } from '@nestjs/common';
import { Balanced, BalancerModule, CostReservation } from '../../src';
import { startApp, type RunningApp } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';

/** Units the model holds now, across both workers (they run in this one process). */
const model = { inFlight: 0, peak: 0, served: 0 };

function appModule(url: string, keyPrefix: string): Type {
  @Controller()
  class GenerateController {
    /** Admitted on x-tokens, corrected to x-real, then holds its units for x-ms of work. */
    @Post('generate')
    @Balanced({ capacity: 20, costHeader: 'x-tokens' })
    async generate(
      @Headers('x-real') real: string,
      @Headers('x-ms') ms: string,
      @CostReservation() reservation: CostReservation,
    ): Promise<{ units: number }> {
      await reservation.correct(Number(real));
      const units = reservation.units;
      model.inFlight += units;
      model.peak = Math.max(model.peak, model.inFlight);
      try {
        await new Promise((r) => setTimeout(r, Number(ms)));
      } finally {
        model.inFlight -= units;
        model.served++;
      }
      return { units };
    }
  }
  @Module({
    imports: [
      BalancerModule.forRoot({
        probeOnStartup: false,
        healthEndpoint: false,
        queueTimeout: 60,
        storage: { type: 'redis', url, keyPrefix, restartHold: 0 },
      }),
    ],
    controllers: [GenerateController],
  })
  class CostRedisModule {}
  return CostRedisModule;
}

describe('cost units across two workers on one Redis (Express and Fastify)', () => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    redis = await sharedRedis();
    const prefix = uniquePrefix('cost-e2e');
    apps.push(await startApp('express', appModule(redis.url, prefix)));
    apps.push(await startApp('fastify', appModule(redis.url, prefix)));
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await redis.stop();
  });

  it('the units in flight never pass the global capacity, with corrections, and none is left', async () => {
    // Mixed estimates, each corrected down to its real size (or kept), a fixed sequence: the
    // model counts a request's real units from after its correction until before its release,
    // so it never sees more than the store holds.
    const calls = Array.from({ length: 60 }, (_, i) => ({
      tokens: (i % 9) + 1,
      real: Math.min((i % 9) + 1, ((i * 7) % 9) + 1),
      ms: 5 + ((i * 13) % 25),
    }));
    const results = await Promise.all(
      calls.map(async (c, i) => {
        const res = await fetch(`${apps[i % 2].url}/generate`, {
          method: 'POST',
          headers: { 'x-tokens': String(c.tokens), 'x-real': String(c.real), 'x-ms': String(c.ms) },
        });
        return { status: res.status, body: (await res.json()) as { units: number } };
      }),
    );
    expect(results.map((r) => r.status)).toEqual(calls.map(() => 201));
    expect(results.map((r) => r.body.units)).toEqual(calls.map((c) => c.real));
    expect(model.served).toBe(calls.length);
    expect(model.peak).toBeGreaterThan(9);
    expect(model.peak).toBeLessThanOrEqual(20);
    const stats = (await (await fetch(`${apps[0].url}/balancer/stats`)).json()) as {
      endpoints: Record<string, { units?: { active: number; queued: number; admitted: number } }>;
    };
    expect(stats.endpoints['/generate'].units).toMatchObject({ active: 0, queued: 0 });
  });
});
