import { Body, Controller, Injectable, Module, Post, type INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { Balanced, BalancerModule, CapacityStore, MemoryCapacityStore } from '../../src';
import { PLATFORMS, type PlatformName } from '../harness/platforms';

/*
 * The code of docs/testing-your-app.md, run as a test so the page cannot rot: an app as its
 * users write it (the model behind a service, BalancerModule with production options), then the
 * e2e test the page shows. Keep the two in step.
 */

// ---- the application (src/app.module.ts in the page) -------------------------------------

@Injectable()
export class ModelService {
  async run(input: string): Promise<{ output: string }> {
    return { output: input.toUpperCase() }; // the real model in production
  }
}

@Controller()
export class ModelController {
  constructor(private readonly model: ModelService) {}

  @Post('predict')
  @Balanced({ probe: { body: { input: 'sample' } } })
  predict(@Body() body: { input: string }) {
    return this.model.run(body.input);
  }
}

/** Exported so tests can replace it (`overrideModule` matches the same object). */
export const balancer = BalancerModule.forRoot({
  // The page reads process.env.REDIS_URL; here a loopback port where nothing listens, so a
  // test that failed to replace the store or the module could not reach anybody's Redis.
  storage: { type: 'redis', url: 'redis://127.0.0.1:1' },
  queueTimeout: 30,
});

@Module({ imports: [balancer], controllers: [ModelController], providers: [ModelService] })
export class AppModule {}

// ---- the tests (test/predict.e2e-spec.ts in the page) ------------------------------------

/** A model the test holds: every call waits until the test lets it go. */
class BlockedModel {
  private waiting: Array<() => void> = [];
  calls = 0;
  async run(input: string): Promise<{ output: string }> {
    this.calls++;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    return { output: input };
  }
  releaseAll(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

/** Poll until `check` holds: the queue has no event a test can await from outside. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(PLATFORMS)('docs/testing-your-app.md on %s', (platform: PlatformName) => {
  let app: INestApplication;
  let url: string;
  let store: MemoryCapacityStore;
  let model: BlockedModel;

  const predict = () =>
    fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'x' }),
    });

  beforeEach(async () => {
    store = new MemoryCapacityStore();
    model = new BlockedModel();
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideModule(balancer)
      .useModule(
        BalancerModule.forRoot({
          probeOnStartup: false, // no probe traffic at startup
          healthEndpoint: false, // no health check against the app
          ui: { enable: false }, // no dashboard, no history sampling
          metrics: false,
          logger: false,
          endpoints: { '/predict': { capacity: 1, maxQueue: 1, queueTimeout: 0.2 } },
        }),
      )
      .overrideProvider(CapacityStore)
      .useValue(store)
      .overrideProvider(ModelService)
      .useValue(model)
      .compile();
    app =
      platform === 'express'
        ? moduleRef.createNestApplication({ logger: false })
        : moduleRef.createNestApplication(new FastifyAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    model.releaseAll();
    await app.close();
  });

  it('answers 503 when the queue is full and 504 when the wait runs out', async () => {
    const first = predict(); // takes the only slot and stays in the model
    await until(async () => model.calls === 1, 'the first request to reach the model');
    const second = predict(); // waits in the queue (maxQueue 1)
    await until(async () => (await store.snapshot('/predict')).queued === 1, 'one waiter');

    const third = await predict(); // the queue is full
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).not.toBeNull();
    expect(await third.json()).toMatchObject({ statusCode: 503, reason: 'queue_full' });

    const timedOut = await second; // waited 0.2 s without a free slot
    expect(timedOut.status).toBe(504);
    expect(await timedOut.json()).toMatchObject({ statusCode: 504, reason: 'queue_timeout' });
    expect(model.calls).toBe(1); // neither rejected request reached the model

    model.releaseAll();
    expect((await first).status).toBe(201);
    await until(async () => (await store.snapshot('/predict')).active === 0, 'the slot back');
    expect((await store.snapshot('/predict')).counters).toEqual({
      admitted: 1,
      rejected: 1,
      timedOut: 1,
      shed: 0,
    });
  });

  it('uses the store the test provided and the capacity from the test options', async () => {
    expect(app.get(CapacityStore)).toBe(store);
    const snapshot = await store.snapshot('/predict');
    expect(snapshot).toMatchObject({ capacity: 1, source: 'manual', active: 0, queued: 0 });
  });
});

describe('docs/testing-your-app.md: the store alone', () => {
  it('replaces the Redis store the app options name, with the app module unchanged', async () => {
    const store = new MemoryCapacityStore();
    const init = jest.spyOn(store, 'init');
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(CapacityStore)
      .useValue(store)
      .compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      expect(app.get(CapacityStore)).toBe(store);
      expect(init).toHaveBeenCalledTimes(1); // the balancer started on this store, not on Redis
    } finally {
      await app.close();
    }
  });
});
