import { Controller, Get, Module } from '@nestjs/common';
import { Balanced, BalancerModule } from '../../src';
import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

/** Two apps on one Redis with different key prefixes: same route, separate caps and queues. */

let hold = new Latch();

@Controller()
class SlowController {
  @Get('slow')
  @Balanced({ capacity: 1 })
  async slow(): Promise<string> {
    await hold.promise;
    return 'ok';
  }
}

function appModule(url: string, keyPrefix: string) {
  @Module({
    imports: [
      BalancerModule.forRoot({
        storage: { type: 'redis', url, keyPrefix },
        probeOnStartup: false,
        healthEndpoint: false,
        ui: { enable: false },
        metrics: false,
        logger: false,
      }),
    ],
    controllers: [SlowController],
  })
  class AppModule {}
  return AppModule;
}

describe.each(PLATFORMS)('key prefixes on %s', (platform) => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    redis = await sharedRedis();
  });

  afterAll(async () => {
    hold.open();
    for (const a of apps.splice(0)) await a.close();
    await redis.stop();
  });

  it('two apps with different prefixes on one Redis do not see each other', async () => {
    hold = new Latch();
    const one = await startApp(platform, appModule(redis.url, uniquePrefix('one')));
    apps.push(one);
    const two = await startApp(platform, appModule(redis.url, uniquePrefix('two')));
    apps.push(two);

    const inOne = fetch(`${one.url}/slow`);
    await waitFor(
      async () => (await poolStats(one.url, '/slow')).active_requests === 1,
      10_000,
      'one busy',
    );
    const queuedInOne = fetch(`${one.url}/slow`);
    await waitFor(
      async () => (await poolStats(one.url, '/slow')).queued === 1,
      10_000,
      'one queued',
    );
    // App two's single slot is still free: its request runs while app one is full.
    const inTwo = fetch(`${two.url}/slow`);
    await waitFor(
      async () => (await poolStats(two.url, '/slow')).active_requests === 1,
      10_000,
      'two busy',
    );
    expect(await poolStats(two.url, '/slow')).toMatchObject({ queued: 0, active_requests: 1 });
    expect(await poolStats(one.url, '/slow')).toMatchObject({ queued: 1, active_requests: 1 });

    hold.open();
    expect((await Promise.all([inOne, queuedInOne, inTwo])).map((r) => r.status)).toEqual([
      200, 200, 200,
    ]);
    await waitFor(
      async () => (await poolStats(one.url, '/slow')).active_requests === 0,
      10_000,
      'one idle',
    );
    expect(await poolStats(one.url, '/slow')).toMatchObject({ admitted: 2, queued: 0 });
    expect(await poolStats(two.url, '/slow')).toMatchObject({ admitted: 1, active_requests: 0 });
  });
});
