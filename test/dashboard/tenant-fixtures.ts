import {
  Controller,
  Headers,
  Inject,
  Module,
  Post,
  ServiceUnavailableException,
  type Type,
} from '@nestjs/common';
import { Balanced, BalancerModule, CapacityStore, type BalancerModuleOptions } from '../../src';
import { normalizeTenant } from '../../src/storage/queue-order';
import { Latch } from '../harness/wait-for';

/** The pool the tenant requests share: one slot, so every request after the first queues. */
export const TENANT_POOL = 'tenants';
/** The request header that names the tenant. */
export const TENANT_HEADER = 'x-api-key';
/** Queue target passed with every tenant request: far above any wait here, so nothing is shed. */
export const QUEUE_TARGET_MS = 60_000;

/**
 * Requests of named tenants, queued in the store's real queue. The tenant option of
 * `@Balanced()` belongs to another part of issue 11; until it is merged these routes take their
 * slot from the `CapacityStore` themselves, with the tenant read from the request's header
 * exactly as admission will (`normalizeTenant`), so the stats, the metrics and the dashboard
 * see what a real request of that tenant produces.
 */
@Controller()
export class TenantController {
  /** Every slot holder waits here until the test opens it. */
  static hold = new Latch();

  constructor(@Inject(CapacityStore) private readonly store: CapacityStore) {}

  /** Declares the pool (capacity 1, a queue of 100); never called. */
  @Post('pool')
  @Balanced({ pool: TENANT_POOL, capacity: 1, maxQueue: 100, queueTimeout: 30 })
  pool(): { ok: boolean } {
    return { ok: true };
  }

  /** Takes a slot of the pool as the header's tenant and holds it until `hold` opens. */
  @Post('as-tenant')
  async asTenant(@Headers(TENANT_HEADER) key?: string): Promise<{ ok: boolean }> {
    const result = await this.store.acquire(TENANT_POOL, {
      tenant: normalizeTenant(key),
      timeoutMs: 30_000,
      maxQueue: 100,
      queueTargetMs: QUEUE_TARGET_MS,
    });
    if (!result.ok) throw new ServiceUnavailableException(result.reason);
    try {
      await TenantController.hold.promise;
    } finally {
      await result.lease.release();
    }
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
  active_requests: number;
  admitted: number;
  shed: number;
  overload?: { shedding: boolean; drain_ms: number | null };
  tenants?: {
    queued: Array<{ tenant: string; count: number }>;
    admitted: Array<{ tenant: string; count: number }>;
  };
}

/** `/balancer/stats` of the tenant pool. */
export async function tenantStats(url: string): Promise<TenantStats> {
  const body = (await (await fetch(`${url}/balancer/stats`)).json()) as {
    endpoints: Record<string, TenantStats>;
  };
  return body.endpoints[TENANT_POOL];
}
