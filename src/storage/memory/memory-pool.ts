import { performance } from 'node:perf_hooks';
import type {
  AcquireOptions,
  AcquireResult,
  CapacitySource,
  Lease,
  PoolCounters,
  PoolSnapshot,
  RejectReason,
} from '../capacity-store.interface';
import { unitsFit } from '../cost-units';
import { DEFAULT_PRIORITY_AGING, TOP_TENANTS, queueKey } from '../queue-order';
import { HeavyHitters } from './heavy-hitters';
import { OrderedQueue, type QueueEntry } from './ordered-queue';
import { OverloadTracker } from './overload-tracker';
import { DEFAULT_TENANT, TenantTable } from './tenant-table';

interface Waiter extends QueueEntry {
  readonly round: number;
  /** `DEFAULT_TENANT` when the request named none. */
  readonly tenant: string;
  readonly enqueuedAt: number;
  /** Units it will hold (1 unless costed). */
  readonly cost: number;
  /** Answer the waiter, which has already left the queue: clears its timer and abort listener. */
  settle(result: AcquireResult): void;
}

/** Makes the lease of a slot of `units` this pool just granted (the store keeps the held leases). */
export type LeaseIssuer = (pool: MemoryPool, units: number) => Lease;

const refusal = (reason: RejectReason, retryAfterS?: number): Promise<AcquireResult> =>
  Promise.resolve(
    retryAfterS === undefined
      ? { ok: false, reason, waitedMs: 0 }
      : { ok: false, reason, waitedMs: 0, retryAfterS },
  );

/**
 * One pool of the memory store: its slots, its queue in the order of `queue-order.ts`
 * (tenants round-robin, aged priorities), `maxQueuePerTenant`, `queueTargetMs` and its counters.
 * Everything runs on the event loop, so a waiter is settled exactly once: a slot, its timer, its
 * abort signal or `rejectWaiters`, whichever runs first takes it out of the queue (`leave`), and
 * the others find it gone. The fast path (a free slot and nobody waiting) touches none of the
 * per-tenant or target state unless the request names a tenant.
 */
export class MemoryPool {
  capacity: number | null = null;
  source: CapacitySource = 'probing';
  active = 0;
  /** Units in flight (= `active` while every request counts 1); see `cost-units.ts`. */
  units = 0;
  /** Units admitted since the store started. */
  private admittedUnits = 0;
  /** Units waiting in the queue. */
  private queuedUnits = 0;
  /** A request named a cost (or `maxQueueCost`), or a lease was corrected: the snapshot shows units. */
  private costed = false;
  readonly counters: PoolCounters = { admitted: 0, rejected: 0, timedOut: 0, shed: 0 };
  private readonly queue = new OrderedQueue<Waiter>();
  /** Rounds and per-tenant queued counts of the waiters. */
  private readonly rounds = new TenantTable();
  /** Admitted per named tenant; created by the first request that names a tenant. */
  private admittedByTenant: HeavyHitters | null = null;
  /** Created by the first request that passes `queueTargetMs` and reaches the queue. */
  private overload: OverloadTracker | null = null;
  private nextSeq = 0;

  constructor(
    readonly name: string,
    private readonly issue: LeaseIssuer,
  ) {}

  /** A slot at once when its units fit and nobody waits, else null (`cost` given: costed). */
  tryGrant(tenant: string | undefined, cost?: number): Lease | null {
    if (cost !== undefined) this.costed = true;
    if (this.queue.size === 0 && unitsFit(this.units, cost ?? 1, this.capacity))
      return this.grant(tenant, cost ?? 1);
    return null;
  }

  /** A held slot of `from` units now holds `to` (a correction): more waiters may fit. */
  resized(from: number, to: number): void {
    this.costed = true;
    this.units += to - from;
    if (to < from) this.drain();
  }

  /** A held slot of `units` went back. */
  released(units: number): void {
    this.active--;
    this.units -= units;
  }

  acquire(options: AcquireOptions): Promise<AcquireResult> {
    // A caller that is already gone gets no slot, free or not (as in the Redis store).
    if (options.signal?.aborted) return refusal('aborted');
    const tenant = options.tenant || DEFAULT_TENANT;
    if (tenant !== DEFAULT_TENANT) this.admittedByTenant ??= new HeavyHitters();
    const lease = this.tryGrant(tenant, options.cost);
    if (lease) return Promise.resolve({ ok: true, lease, waitedMs: 0 });
    const now = performance.now();
    if (this.queue.size >= options.maxQueue) {
      this.counters.rejected++;
      return refusal('queue_full');
    }
    const cost = options.cost ?? 1;
    const maxCost = options.maxQueueCost;
    if (maxCost) this.costed = true;
    if (maxCost && this.queuedUnits + cost > maxCost) {
      this.counters.rejected++;
      return refusal('queue_cost_full');
    }
    const perTenant = options.maxQueuePerTenant;
    if (perTenant && perTenant > 0 && this.rounds.queuedOf(tenant) >= perTenant) {
      this.counters.rejected++;
      this.counters.shed++;
      return refusal('tenant_queue_full');
    }
    const priority = options.priority ?? 0;
    const aging = options.priorityAging ?? DEFAULT_PRIORITY_AGING;
    if (options.queueTargetMs !== undefined) {
      const retryAfterS = this.shed(options.queueTargetMs, tenant, priority, aging, now);
      if (retryAfterS !== null) {
        this.counters.rejected++;
        this.counters.shed++;
        return refusal('shed', retryAfterS);
      }
    }
    const round = this.rounds.enqueue(tenant);
    return this.wait(options, tenant, round, queueKey(round, priority, aging), now, cost);
  }

  /** Hand free units to the waiters first in order; strict head-of-line (`cost-units.ts`). */
  drain(): void {
    while (this.queue.size > 0) {
      const waiter = this.queue.peek() as Waiter;
      if (!unitsFit(this.units, waiter.cost, this.capacity)) return;
      const now = performance.now();
      const waitedMs = now - waiter.enqueuedAt;
      this.rounds.granted(waiter.round);
      // Sampled before `leave`: a grant that empties the queue counts, then ends the spell.
      this.overload?.granted(now, waitedMs);
      this.leave(waiter);
      waiter.settle({ ok: true, lease: this.grant(waiter.tenant, waiter.cost), waitedMs });
    }
  }

  /** Answer every waiter `closed` (counted as rejected). */
  rejectWaiters(): void {
    for (const waiter of this.queue.entries()) {
      if (!this.leave(waiter)) continue;
      this.counters.rejected++;
      waiter.settle({
        ok: false,
        reason: 'closed',
        waitedMs: performance.now() - waiter.enqueuedAt,
      });
    }
  }

  snapshot(): PoolSnapshot {
    const snapshot: PoolSnapshot = {
      pool: this.name,
      capacity: this.capacity,
      source: this.source,
      active: this.active,
      queued: this.queue.size,
      counters: { ...this.counters },
      workers: 1,
    };
    if (this.admittedByTenant) {
      snapshot.tenants = {
        queued: this.rounds.top(TOP_TENANTS),
        admitted: this.admittedByTenant.top(TOP_TENANTS),
      };
    }
    if (this.overload) snapshot.overload = this.overload.snapshot(performance.now());
    if (this.costed) {
      snapshot.units = {
        active: this.units,
        queued: this.queuedUnits,
        admitted: this.admittedUnits,
      };
    }
    return snapshot;
  }

  /**
   * `queueTargetMs`: records the target; while the queue stands, the `Retry-After` of a
   * newcomer whose predicted wait ((waiters ahead + 1) x drain interval) passes it, else null.
   */
  private shed(
    targetMs: number,
    tenant: string,
    priority: number,
    aging: number,
    now: number,
  ): number | null {
    if (this.overload) this.overload.retarget(targetMs);
    else this.overload = new OverloadTracker(targetMs);
    const from = this.overload.shedFromAhead(now);
    if (from === null) return null;
    const key = queueKey(this.rounds.roundFor(tenant), priority, aging);
    if (this.queue.countUpTo(key, from) < from) return null;
    return this.overload.retryAfterS(this.queue.size);
  }

  private wait(
    options: AcquireOptions,
    tenant: string,
    round: number,
    key: number,
    enqueuedAt: number,
    cost: number,
  ): Promise<AcquireResult> {
    return new Promise<AcquireResult>((resolve) => {
      const signal = options.signal;
      const fail = (reason: 'aborted' | 'timeout'): void => {
        if (!this.leave(waiter)) return;
        if (reason === 'timeout') this.counters.timedOut++;
        waiter.settle({ ok: false, reason, waitedMs: performance.now() - enqueuedAt });
        // It may have been a head that did not fit: the waiters behind it may fit now.
        this.drain();
      };
      const onAbort = (): void => fail('aborted');
      const timer = setTimeout(() => fail('timeout'), Math.max(0, options.timeoutMs));
      const waiter: Waiter = {
        key,
        seq: this.nextSeq++,
        queued: false,
        round,
        tenant,
        enqueuedAt,
        cost,
        settle: (result) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
      this.queuedUnits += cost;
    });
  }

  /** Take a waiter out of the queue and its tenant's count; false when it had left already. */
  private leave(waiter: Waiter): boolean {
    if (!this.queue.delete(waiter)) return false;
    this.queuedUnits -= waiter.cost;
    this.rounds.leave(waiter.tenant);
    if (this.queue.size === 0) this.overload?.emptied();
    return true;
  }

  private grant(tenant: string | undefined, cost: number): Lease {
    this.active++;
    this.units += cost;
    this.admittedUnits += cost;
    this.counters.admitted++;
    if (tenant) (this.admittedByTenant ??= new HeavyHitters()).add(tenant);
    return this.issue(this, cost);
  }
}
