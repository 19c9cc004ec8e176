import type { TenantCount } from '../capacity-store.interface';
import { nextRound } from '../queue-order';

/** The internal name of the pool's shared default tenant (requests that name none). */
export const DEFAULT_TENANT = '';

interface TenantEntry {
  lastRound: number;
  queued: number;
}

/** Largest count first, ties by name: the order of every per-tenant list. */
export function byCountThenName(a: TenantCount, b: TenantCount): number {
  return b.count - a.count || (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0);
}

/**
 * A pool's rounds (see `queue-order.ts`): the current round (largest granted so far) and, per
 * tenant with waiters, its last round and queued count. A tenant's entry goes when its last
 * waiter leaves, so the table never holds more tenants than the queue holds waiters, and a
 * tenant that comes back starts from the current round.
 */
export class TenantTable {
  private currentRound = 0;
  private readonly tenants = new Map<string, TenantEntry>();

  /** The round a new waiter of `tenant` would get (nothing is recorded). */
  roundFor(tenant: string): number {
    return nextRound(this.currentRound, this.tenants.get(tenant)?.lastRound);
  }

  /** Waiters of `tenant` in the queue. */
  queuedOf(tenant: string): number {
    return this.tenants.get(tenant)?.queued ?? 0;
  }

  /** Record a new waiter of `tenant`; returns its round. */
  enqueue(tenant: string): number {
    const entry = this.tenants.get(tenant);
    const round = nextRound(this.currentRound, entry?.lastRound);
    if (entry) {
      entry.lastRound = round;
      entry.queued++;
    } else {
      this.tenants.set(tenant, { lastRound: round, queued: 1 });
    }
    return round;
  }

  /** A waiter of `tenant` left the queue (granted, timed out, aborted or rejected). */
  leave(tenant: string): void {
    const entry = this.tenants.get(tenant);
    if (!entry) return;
    if (--entry.queued <= 0) this.tenants.delete(tenant);
  }

  /** A waiter of round `round` was granted. */
  granted(round: number): void {
    if (round > this.currentRound) this.currentRound = round;
  }

  /** Tenants with waiters (the default tenant included). */
  get size(): number {
    return this.tenants.size;
  }

  /** The `n` named tenants with the most waiters, largest first, ties by name. */
  top(n: number): TenantCount[] {
    const all: TenantCount[] = [];
    for (const [tenant, { queued }] of this.tenants) {
      if (tenant !== DEFAULT_TENANT) all.push({ tenant, count: queued });
    }
    return all.sort(byCountThenName).slice(0, n);
  }
}
