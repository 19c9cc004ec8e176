import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  type MiddlewareConsumer,
  type NestMiddleware,
  type NestModule,
  type Type,
} from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Balanced, BalancerModule, CapacityStore } from '../../src';
import { attachAdmission } from '../../src/admission/admission-state';
import { ADMISSION_CASES, startApp, type RunningApp } from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

/**
 * The contract with an admission layer that runs before Nest's guards (early admission): the
 * admission of a request is the state on the raw Node request. The guard, the interceptor and
 * the method wrapper must not admit such a request again, and must still hold its slot until
 * the handler and the response are done, then give it back exactly once.
 */
let hold = new Latch();
let earlyAdmitted = 0;

@Injectable()
class EarlyAdmission implements NestMiddleware {
  constructor(@Inject(CapacityStore) private readonly store: CapacityStore) {}
  async use(req: IncomingMessage, res: ServerResponse, next: () => void): Promise<void> {
    // Express strips the mount path from `url`; `originalUrl` keeps it.
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
    const pool = url.startsWith('/yaml') ? '/yaml' : '/deco';
    const result = await this.store.acquire(pool, { timeoutMs: 5000, maxQueue: 10 });
    if (!result.ok) throw new Error(`early admission failed: ${result.reason}`);
    earlyAdmitted++;
    attachAdmission(result.lease, req, res);
    next();
  }
}

@Controller()
class EarlyController {
  @Get('deco')
  @Balanced({ capacity: 1 })
  async deco(): Promise<string> {
    await hold.promise;
    return 'deco';
  }

  @Get('yaml')
  async yaml(): Promise<string> {
    await hold.promise;
    return 'yaml';
  }
}

function moduleFor(admission: 'guard' | 'interceptor'): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        healthEndpoint: false,
        logger: false,
        admission,
        endpoints: { '/yaml': { capacity: 1 } },
      }),
    ],
    controllers: [EarlyController],
    providers: [EarlyAdmission],
  })
  class EarlyModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      consumer.apply(EarlyAdmission).forRoutes('deco', 'yaml');
    }
  }
  return EarlyModule;
}

describe.each(ADMISSION_CASES)('early admission contract on %s, %s admission', (platform, mode) => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp(platform, moduleFor(mode));
  });
  afterAll(async () => {
    await app?.close();
  });

  it.each(['/deco', '/yaml'])(
    '%s: one slot per request, held through the handler, given back once',
    async (pool) => {
      hold = new Latch();
      const before = earlyAdmitted;
      const first = fetch(`${app.url}${pool}`);
      // Admitted once (capacity 1 is taken, nothing else): a second admission would wait forever.
      await waitFor(async () => (await poolStats(app.url, pool)).active_requests === 1);
      expect(earlyAdmitted).toBe(before + 1);
      const second = fetch(`${app.url}${pool}`);
      await waitFor(async () => (await poolStats(app.url, pool)).queued === 1);
      hold.open();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      await waitFor(async () => (await poolStats(app.url, pool)).active_requests === 0);
      expect(await poolStats(app.url, pool)).toMatchObject({
        active_requests: 0,
        available_slots: 1,
        queued: 0,
      });
      expect(earlyAdmitted).toBe(before + 2);
    },
  );
});
