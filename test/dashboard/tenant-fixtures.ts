import { Controller, Module, Post, type Type } from '@nestjs/common';
import { Balanced, BalancerModule, type BalancerModuleOptions } from '../../src';
import { Latch } from '../harness/wait-for';

/** The pool the tenant requests share: one slot, so every request after the first queues. */
export const TENANT_POOL = 'tenants';
/** The request header that names the tenant. */
export const TENANT_HEADER = 'x-api-key';
/** Queue target of the tenant pool: far above any wait there, so nothing is shed. */
export const QUEUE_TARGET_MS = 60_000;

/** The pool that builds a standing queue: one slot, each request works `SERVICE_MS`. */
export const STANDING_POOL = 'standing';
export const SERVICE_MS = 50;
/**
 * Its queue target. Every request granted from the queue waited at least one whole service
 * time behind the one before it (50 ms), 2.5 x the target: a queue of a few requests counts as
 * standing after one interval (`queueTargetIntervalMs(20)` = 100 ms) and stays so while it lasts.
 */
export const STANDING_TARGET_MS = 20;

@Controller()
export class TenantController {
  /** Every request of the tenant pool holds its slot until the test opens this. */
  static hold = new Latch();

  /** The tenant comes from the request's header (`tenantHeader`), as in a real app. */
  @Post('as-tenant')
  @Balanced({
    pool: TENANT_POOL,
    capacity: 1,
    maxQueue: 100,
    queueTimeout: 30,
    tenantHeader: TENANT_HEADER,
    queueTargetMs: QUEUE_TARGET_MS,
  })
  async asTenant(): Promise<{ ok: boolean }> {
    await TenantController.hold.promise;
    return { ok: true };
  }

  @Post('work')
  @Balanced({
    pool: STANDING_POOL,
    capacity: 1,
    maxQueue: 100,
    queueTimeout: 30,
    queueTargetMs: STANDING_TARGET_MS,
  })
  async work(): Promise<{ ok: boolean }> {
    await new Promise((r) => setTimeout(r, SERVICE_MS));
    return { ok: true };
  }
}

/** An app with the tenant pool (probing off, no health gate). */
export function tenantApp(options: Exclude<BalancerModuleOptions, string> = {}): Type {
  @Module({
    imports: [BalancerModule.forRoot({ healthEndpoint: false, probeOnStartup: false, ...options })],
    controllers: [TenantController],
  })
  class TenantTestModule {}
  return TenantTestModule;
}

/** Send one request as `tenant`; resolves with its status once it is answered. */
export function asTenant(url: string, tenant: string): Promise<number> {
  return fetch(`${url}/as-tenant`, { method: 'POST', headers: { [TENANT_HEADER]: tenant } }).then(
    async (res) => {
      await res.arrayBuffer();
      return res.status;
    },
  );
}

interface TenantStats {
  queued: number;
  rejected: number;
  active_requests: number;
  admitted: number;
  shed: number;
  overload?: { shedding: boolean; drain_ms: number | null };
  tenants?: {
    queued: Array<{ tenant: string; count: number }>;
    admitted: Array<{ tenant: string; count: number }>;
  };
}

/** `/balancer/stats` of one pool (the tenant pool unless named). */
export async function tenantStats(url: string, pool = TENANT_POOL): Promise<TenantStats> {
  const body = (await (await fetch(`${url}/balancer/stats`)).json()) as {
    endpoints: Record<string, TenantStats>;
  };
  return body.endpoints[pool];
}
