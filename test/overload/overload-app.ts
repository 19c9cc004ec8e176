import { Controller, Get, Module, Post, Query, type Type } from '@nestjs/common';
import { Balanced, BalancerModule, type BalancerOptions } from '../../src';
import { Latch } from '../harness/wait-for';

/*
 * The app of the overload property suites (issue 11), served in-process on the memory store
 * (test/overload/*.e2e-spec.ts) and by worker processes on Redis (overload-worker.ts). Every
 * watched route is its own pool of CAPACITY slots; a handler's work is a sleep of `ms` (the
 * modelled service time S) or, for `hold=1`, a wait until the test releases it by id.
 */

/** Slots of every watched pool: the 2 of the issue's scenarios. */
export const CAPACITY = 2;
/** Queue timeout (s) of the tenant and priority pools: far above every wait they model. */
export const LONG_QUEUE_TIMEOUT_S = 30;

export interface OverloadAppConfig {
  /** `queueTargetMs` of the `/target` pool (T). */
  targetMs: number;
  /** Queue timeout of the `/target` pool, seconds (rejections must come far sooner). */
  targetQueueTimeoutS: number;
  /**
   * Where the policies are set: `decorator` (`@Balanced({ tenant, priority, queueTargetMs })`,
   * tenant and priority as callbacks over the request's headers) or `endpoints` (the module's
   * `endpoints[path]` with `tenantHeader` / `priorityHeader`, the shape a YAML file loads). The
   * memory suites use one, the Redis workers the other, so both surfaces are exercised.
   */
  policies: 'decorator' | 'endpoints';
}

/** Where handlers note that they started, readable by the test (`GET /test/starts`). */
export interface StartLog {
  push(id: string): Promise<void>;
  list(): Promise<string[]>;
  clear(): Promise<void>;
}

/** The start log of a single process. */
export class LocalStartLog implements StartLog {
  private readonly ids: string[] = [];
  async push(id: string): Promise<void> {
    this.ids.push(id);
  }
  async list(): Promise<string[]> {
    return [...this.ids];
  }
  async clear(): Promise<void> {
    this.ids.length = 0;
  }
}

export const TENANT_HEADER = 'x-tenant';
export const PRIORITY_HEADER = 'x-priority';

/** A header of the request whatever object the adapter hands to the selector. */
function header(req: unknown, name: string): string | undefined {
  const value = (req as { headers?: Record<string, unknown> }).headers?.[name];
  return typeof value === 'string' ? value : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Build the app module around `log` (starts) and `balancer` (storage and the rest). */
export function overloadAppModule(
  config: OverloadAppConfig,
  log: StartLog,
  balancer: BalancerOptions,
): Type {
  const onDecorator = config.policies === 'decorator';
  const base = { capacity: CAPACITY, queueTimeout: LONG_QUEUE_TIMEOUT_S };
  const targetBase = { capacity: CAPACITY, queueTimeout: config.targetQueueTimeoutS };
  const tenanted = onDecorator ? { tenant: (req: unknown) => header(req, TENANT_HEADER) } : {};
  const prio = onDecorator
    ? { priority: (req: unknown) => Number(header(req, PRIORITY_HEADER) ?? 0) }
    : {};
  const target = onDecorator ? { queueTargetMs: config.targetMs } : {};
  const endpoints: BalancerOptions['endpoints'] = onDecorator
    ? {}
    : {
        '/tenanted': { ...base, tenantHeader: TENANT_HEADER },
        '/prio': { ...base, priorityHeader: PRIORITY_HEADER },
        '/target': { ...targetBase, queueTargetMs: config.targetMs },
      };
  /** Held handlers of this process, by request id. */
  const holds = new Map<string, Latch>();

  async function work(id: string | undefined, ms: string | undefined, hold: string | undefined) {
    if (hold === '1' && id !== undefined) {
      // Releasable before the start is visible: the test releases only what it saw start.
      const latch = new Latch();
      holds.set(id, latch);
      await log.push(id);
      await latch.promise;
      holds.delete(id);
    } else {
      if (id !== undefined) await log.push(id);
      await sleep(Number(ms ?? 0));
    }
    return { id: id ?? null, pid: process.pid };
  }

  @Controller()
  class OverloadController {
    /** Round-robin across tenants (x-tenant). */
    @Get('tenanted')
    @Balanced({ ...base, ...tenanted })
    tenanted(@Query('ms') ms?: string) {
      return work(undefined, ms, undefined);
    }

    /** The same pool shape without tenants: today's FIFO, the control of the tenant property. */
    @Get('fifo')
    @Balanced(base)
    fifo(@Query('ms') ms?: string) {
      return work(undefined, ms, undefined);
    }

    /** Higher x-priority first. */
    @Get('prio')
    @Balanced({ ...base, ...prio })
    prio(@Query('id') id?: string, @Query('ms') ms?: string, @Query('hold') hold?: string) {
      return work(id, ms, hold);
    }

    /** Bounded queue delay. */
    @Get('target')
    @Balanced({ ...targetBase, ...target })
    target(@Query('ms') ms?: string) {
      return work(undefined, ms, undefined);
    }
  }

  /** Unwatched test controls. */
  @Controller('test')
  class TestControlController {
    @Get('starts')
    async starts(): Promise<{ ids: string[] }> {
      return { ids: await log.list() };
    }

    @Post('starts/clear')
    async clear(): Promise<{ ok: true }> {
      await log.clear();
      return { ok: true };
    }

    /** Let the held handler `id` of this process finish. */
    @Post('release')
    release(@Query('id') id: string): { released: boolean } {
      const latch = holds.get(id);
      latch?.open();
      return { released: latch !== undefined };
    }
  }

  @Module({
    imports: [
      BalancerModule.forRoot({
        healthEndpoint: false,
        probeOnStartup: false,
        ui: { enable: false },
        metrics: false,
        logger: false,
        endpoints,
        ...balancer,
      }),
    ],
    controllers: [OverloadController, TestControlController],
  })
  class OverloadAppModule {}
  return OverloadAppModule;
}
