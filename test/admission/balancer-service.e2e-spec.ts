import { Controller, Injectable, Module, Post, Query, type Type } from '@nestjs/common';
import {
  Balanced,
  BalancerModule,
  BalancerQueueTimeoutException,
  BalancerService,
  BalancerUnavailableException,
} from '../../src';
import { PLATFORMS, startApp, type PlatformName, type RunningApp } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

/**
 * The model both kinds of caller use: an HTTP route and `BalancerService.run()` callers (what a
 * GraphQL resolver, gateway or queue consumer would be). It counts what runs inside it.
 */
const model = {
  /** Lets every call finish. */
  hold: new Latch(),
  /** Lets one call finish (`finish(id)`). */
  each: new Map<string, Latch>(),
  inFlight: 0,
  peak: 0,
  started: [] as string[],
  async generate(id: string): Promise<string> {
    this.started.push(id);
    this.peak = Math.max(this.peak, ++this.inFlight);
    const own = new Latch();
    this.each.set(id, own);
    try {
      await Promise.race([this.hold.promise, own.promise]);
      return id;
    } finally {
      this.inFlight--;
    }
  },
  finish(id: string): void {
    this.each.get(id)?.open();
  },
  reset(): void {
    this.hold = new Latch();
    this.each.clear();
    this.inFlight = 0;
    this.peak = 0;
    this.started = [];
  },
};

/** Health the test switches: the real health gate polls it as a Terminus indicator. */
const health = { sick: false };

@Controller()
class GpuController {
  @Post('generate')
  @Balanced({ capacity: 2, pool: 'gpu' })
  generate(@Query('id') id: string): Promise<string> {
    return model.generate(`http-${id}`);
  }

  @Post('short')
  @Balanced({ capacity: 1, queueTimeout: 0.2 })
  short(@Query('id') id: string): Promise<string> {
    return model.generate(`http-${id}`);
  }
}

/** A non-HTTP caller, as a queue consumer would be written. */
@Injectable()
class GpuConsumer {
  constructor(private readonly balancer: BalancerService) {}

  consume(id: string, pool = 'gpu', signal?: AbortSignal): Promise<string> {
    return this.balancer.run(pool, () => model.generate(`run-${id}`), { signal });
  }
}

type StoreName = 'memory' | 'redis';

function appModule(storage: { type: 'memory' } | { type: 'redis'; url: string }): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        storage:
          storage.type === 'redis'
            ? // No restart hold: no balancer used this suite's Redis before it started it.
              { ...storage, keyPrefix: uniquePrefix('run'), restartHold: 0 }
            : storage,
        healthEndpoint: false,
        healthIndicators: [
          () => {
            if (health.sick) throw new Error('model offline');
            return { model: { status: 'up' } };
          },
        ],
        healthCheckInterval: 0.05,
        healthFailureThreshold: 1,
        logger: false,
      }),
    ],
    controllers: [GpuController],
    providers: [GpuConsumer],
  })
  class RunAppModule {}
  return RunAppModule;
}

const CASES: Array<[PlatformName, StoreName]> = PLATFORMS.flatMap((p) =>
  (['memory', 'redis'] as const).map((s): [PlatformName, StoreName] => [p, s]),
);

describe.each(CASES)(
  'BalancerService.run beside an HTTP route on %s (%s store)',
  (platform, store) => {
    let app: RunningApp;
    let consumer: GpuConsumer;
    let redis: Awaited<ReturnType<typeof sharedRedis>> | undefined;

    const post = (path: string, id: string | number) =>
      fetch(`${app.url}/${path}?id=${id}`, { method: 'POST' });
    const gpu = () => poolStats(app.url, 'gpu');
    const healthy = async () =>
      ((await (await fetch(`${app.url}/balancer/stats`)).json()) as { healthy: boolean }).healthy;
    /** Wait until `n` callers hold a slot or wait for one: arrival order is then known. */
    const arrived = (n: number, pool = 'gpu') =>
      waitFor(
        async () => {
          const s = await poolStats(app.url, pool);
          return s.active_requests + s.queued === n;
        },
        10_000,
        `${n} callers in ${pool}`,
      );

    beforeAll(async () => {
      if (store === 'redis') redis = await sharedRedis();
      app = await startApp(
        platform,
        appModule(redis ? { type: 'redis', url: redis.url } : { type: 'memory' }),
      );
      consumer = app.app.get(GpuConsumer);
    });
    afterAll(async () => {
      model.hold.open();
      await app?.close();
      await redis?.stop();
    });
    beforeEach(() => {
      model.reset();
      health.sick = false;
    });
    afterEach(async () => {
      model.hold.open();
      health.sick = false;
      await waitFor(async () => (await gpu()).active_requests === 0, 10_000, 'gpu slots back');
    });

    it('holds one cap over route and run() callers together, and counts both in stats', async () => {
      const before = await gpu();
      const http = Array.from({ length: 6 }, (_, i) => post('generate', i));
      const runs = Array.from({ length: 6 }, (_, i) => consumer.consume(String(i)));
      await arrived(12);
      const held = await gpu();
      expect(held.active_requests).toBe(2);
      expect(held.queued).toBe(10);
      model.hold.open();
      expect((await Promise.all(http)).map((r) => r.status)).toEqual(Array(6).fill(201));
      expect(await Promise.all(runs)).toEqual(Array.from({ length: 6 }, (_, i) => `run-${i}`));
      expect(model.peak).toBe(2);
      const after = await gpu();
      expect(after.admitted - before.admitted).toBe(12);
      expect(after.active_requests).toBe(0);
    });

    it('serves route and run() callers from one FIFO queue', async () => {
      const order: string[] = [];
      const pending: Array<Promise<unknown>> = [];
      for (let i = 0; i < 8; i++) {
        // Alternate: http-0, run-1, http-2, run-3, ...
        if (i % 2 === 0) {
          order.push(`http-${i}`);
          pending.push(post('generate', i));
        } else {
          order.push(`run-${i}`);
          pending.push(consumer.consume(String(i)));
        }
        await arrived(i + 1);
      }
      // Give slots back one at a time, so each release admits exactly one waiter: the one at
      // the head of the queue, whichever kind of caller it is.
      expect(model.started.slice().sort()).toEqual(order.slice(0, 2).sort());
      for (let done = 0; done < order.length - 2; done++) {
        model.finish(model.started[done]);
        await waitFor(() => model.started.length === done + 3, 10_000, `caller ${done + 3}`);
      }
      expect(model.started.slice(2)).toEqual(order.slice(2));
      model.hold.open();
      await Promise.all(pending);
      expect(model.peak).toBe(2);
    });

    it('lets an aborted run() caller leave the queue; its fn never runs, the next in line does', async () => {
      const holders = [post('generate', 'a'), post('generate', 'b')];
      await arrived(2);
      const abort = new AbortController();
      const aborted = consumer.consume('quitter', 'gpu', abort.signal);
      await arrived(3);
      const behind = post('generate', 'behind');
      await arrived(4);
      const reason = new Error('consumer shutting down');
      abort.abort(reason);
      await expect(aborted).rejects.toBe(reason);
      await waitFor(async () => (await gpu()).queued === 1, 10_000, 'the aborted caller to leave');
      model.hold.open();
      await Promise.all(holders);
      expect((await behind).status).toBe(201);
      expect(model.started).toEqual(['http-a', 'http-b', 'http-behind']);
    });

    it('rejects a run() caller with BalancerQueueTimeoutException after the queue timeout', async () => {
      const before = await poolStats(app.url, '/short');
      const holder = post('short', 'holder');
      await arrived(1, '/short');
      const error = await consumer.consume('late', '/short').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BalancerQueueTimeoutException);
      expect((error as BalancerQueueTimeoutException).getStatus()).toBe(504);
      expect(model.started).toEqual(['http-holder']);
      model.hold.open();
      expect((await holder).status).toBe(201);
      const after = await poolStats(app.url, '/short');
      expect(after.timed_out - before.timed_out).toBe(1);
    });

    it('rejects run() callers with BalancerUnavailableException while the health gate is closed', async () => {
      const before = await gpu();
      health.sick = true;
      await waitFor(async () => !(await healthy()), 10_000, 'the gate to close');
      const error = await consumer.consume('sick').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BalancerUnavailableException);
      expect((error as BalancerUnavailableException).reason).toBe('unhealthy');
      expect((await post('generate', 'sick')).status).toBe(503);
      expect(model.started).toEqual([]);
      expect((await gpu()).rejected - before.rejected).toBe(2);
      health.sick = false;
      await waitFor(healthy, 10_000, 'the gate to reopen');
      model.hold.open();
      await expect(consumer.consume('well')).resolves.toBe('run-well');
    });
  },
);
