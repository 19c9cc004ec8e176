import { Controller, Module, Post, type Type } from '@nestjs/common';
import Redis from 'ioredis';
import { Balanced, BalancerModule, CapacityStore, type StorageOptions } from '../../src';
import { RedisCapacityStore } from '../../src/storage/redis-capacity.store';
import { PLATFORMS } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { WorkLatch, startHealthApp, waitFor, within, type HealthApp } from './health-fixtures';

const work = new WorkLatch();

@Controller()
class AppController {
  @Post('work')
  @Balanced({ capacity: 2 })
  async work(): Promise<{ ok: true }> {
    await work.wait();
    return { ok: true };
  }
}

function appModule(storage: StorageOptions): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        probeOnStartup: false,
        healthEndpoint: false,
        queueTimeout: 20,
        drainTimeout: 20,
        storage,
      }),
    ],
    controllers: [AppController],
  })
  class RedisShutdownAppModule {}
  return RedisShutdownAppModule;
}

const post = (url: string): Promise<Response> => fetch(`${url}/work`, { method: 'POST' });

describe.each(PLATFORMS)('graceful shutdown with Redis (%s)', (platform) => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  let h: HealthApp | undefined;
  const opened: Array<{ close(): Promise<unknown> | void }> = [];

  beforeAll(async () => {
    redis = await sharedRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });
  beforeEach(() => work.reset());
  afterEach(async () => {
    work.open();
    await h?.close();
    h = undefined;
    for (const c of opened.splice(0)) await c.close();
  });

  /** An independent view of the same keys, as another worker would see them. */
  async function observer(keyPrefix: string): Promise<RedisCapacityStore> {
    // A long lease TTL: a slot still held after close() cannot have expired by the time we look.
    // No restart hold: no balancer used this Redis before the suite started it.
    const store = new RedisCapacityStore(
      { type: 'redis', url: redis.url, keyPrefix, leaseTtl: 60, restartHold: 0 },
      { logger: false },
    );
    await store.init();
    opened.push(store);
    return store;
  }

  it('app.close() during load: in-flight finish, queued get 503, Redis holds no slots afterwards', async () => {
    const keyPrefix = uniquePrefix('shutdown');
    h = await startHealthApp(
      platform,
      appModule({ type: 'redis', url: redis.url, keyPrefix, leaseTtl: 60, restartHold: 0 }),
    );
    const { url } = h;
    const store = h.app.get<CapacityStore>(CapacityStore);
    const other = await observer(keyPrefix);

    const inFlight = [post(url), post(url)];
    await waitFor(() => work.entered === 2, 10_000, 'two requests in the handler');
    const queued = [post(url), post(url), post(url)];
    await waitFor(async () => (await store.snapshot('/work')).queued === 3, 10_000, 'three queued');
    expect((await other.snapshot('/work')).active).toBe(2);

    const closing = h.close();
    const queuedAnswers = await within(Promise.all(queued), 10_000, 'queued requests');
    expect(queuedAnswers.map((r) => r.status)).toEqual([503, 503, 503]);
    const late = await post(url);
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('5');

    work.open();
    const done = await within(Promise.all(inFlight), 10_000, 'in-flight requests');
    expect(done.map((r) => r.status)).toEqual([201, 201]);
    await within(closing, 10_000, 'app.close()');

    const after = await other.snapshot('/work');
    expect(after.active).toBe(0);
    expect(after.queued).toBe(0);
  });

  it('closes its own connections but never a client passed in', async () => {
    work.open();
    const client = new Redis(redis.url);
    opened.push({ close: () => client.quit() });
    h = await startHealthApp(
      platform,
      appModule({ type: 'redis', client, keyPrefix: uniquePrefix('own'), restartHold: 0 }),
    );
    expect((await post(h.url)).status).toBe(201);
    await within(h.close(), 10_000, 'app.close()');
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
  });
});
