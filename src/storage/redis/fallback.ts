import { performance } from 'node:perf_hooks';
import type { AcquireResult, PoolSnapshot } from '../capacity-store.interface';
import type { AcquireRequest, StoreContext } from './context';
import type { PoolState, Slot } from './pool-state';

/** A lease id recorded in Redis that this process holds but no request uses right now. */
interface FreeSlot {
  readonly id: string;
  readonly expiresBy: number;
  /** Units its lease holds in Redis. */
  readonly units: number;
}

interface LocalWaiter {
  readonly pool: PoolState;
  readonly start: number;
  readonly tenant: string;
  /** Units it needs: only a free slot holding as many in Redis serves it. */
  readonly cost: number;
  readonly signal?: AbortSignal;
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
  /** `migrate`: Redis is back, continue in the global queue. */
  resolve(result: AcquireResult | 'migrate'): void;
}

/**
 * Admission while Redis is unreachable. The cap stays a guarantee: this process only reuses the
 * slots it already holds in Redis (nobody else can be granted them while their leases live),
 * and only until the fallback window ends, `fallbackWindowMs` after its last confirmed
 * heartbeat on its own monotonic clock, which is `leaseTtl - fallbackWindowMs` before those
 * leases can expire in Redis. After the window it admits nothing (the caller answers 503) until
 * Redis is back. Waiters queue locally and move to the global queue on recovery.
 *
 * The local queue is plain FIFO: for the few seconds of a fallback window, on the handful of
 * slots this process holds, tenants, priorities and `queueTargetMs` do not order or shed it
 * (nor are admissions counted per tenant). `maxQueuePerTenant` still holds, per process. A
 * costed request reuses a free slot only when that lease holds at least its units in Redis
 * (head-of-line: the first waiter is served first or nobody is); `maxQueueCost` is not applied.
 */
export class LocalFallback {
  private readonly free = new Map<PoolState, FreeSlot[]>();
  private readonly waiters: LocalWaiter[] = [];
  /** End of the window (monotonic ms). */
  private until = 0;
  private paused = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly ctx: StoreContext,
    /** The window is over: the store stops admitting locally. */
    private readonly onExpired: () => void,
  ) {}

  private get margin(): number {
    return this.ctx.ttlMs - this.ctx.tuning.fallbackWindowMs;
  }

  /** Start (or restart) the window: it ends `fallbackWindowMs` after `confirmedAt`. */
  enter(confirmedAt: number): void {
    this.paused = false;
    this.until = confirmedAt + this.ctx.tuning.fallbackWindowMs;
    clearTimeout(this.timer);
    const left = this.until - performance.now();
    if (left <= 0) return this.onExpired();
    this.timer = setTimeout(() => this.onExpired(), left);
    this.timer.unref();
  }

  get windowEnd(): number {
    return this.until;
  }

  /** No local grants while a recovery is in flight. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const p of new Set(this.waiters.map((w) => w.pool))) this.grant(p);
  }

  private usable(expiresBy: number): boolean {
    const now = performance.now();
    return now < this.until && now < expiresBy - this.margin;
  }

  acquire(p: PoolState, req: AcquireRequest): Promise<AcquireResult | 'migrate'> {
    const { start, signal, tenant } = req;
    const cost = req.cost ?? 1;
    const waitedMs = (): number => performance.now() - start;
    // While a recovery is in flight, wait for its outcome (the waiter moves to the global
    // queue, or gets 503 if the recovery fails after the window).
    const mode = this.ctx.mode();
    if (mode === 'expired' || (mode === 'fallback' && performance.now() >= this.until)) {
      p.deltas.rejected++;
      return Promise.resolve({ ok: false, reason: 'closed', waitedMs: waitedMs() });
    }
    const queued = this.waiters.filter((w) => w.pool === p).length;
    if (!this.paused && queued === 0) {
      const slot = this.take(p, cost);
      if (slot) {
        p.deltas.admitted++;
        return Promise.resolve({ ok: true, lease: slot, waitedMs: waitedMs() });
      }
    }
    if (queued >= req.maxQueue) {
      p.deltas.rejected++;
      return Promise.resolve({ ok: false, reason: 'queue_full', waitedMs: waitedMs() });
    }
    const limit = req.maxQueuePerTenant;
    if (
      limit > 0 &&
      this.waiters.filter((w) => w.pool === p && w.tenant === tenant).length >= limit
    ) {
      p.deltas.rejected++;
      p.deltas.shed++;
      return Promise.resolve({ ok: false, reason: 'tenant_queue_full', waitedMs: waitedMs() });
    }
    return new Promise((resolve) => {
      const w: LocalWaiter = { pool: p, start, tenant, cost, signal, resolve };
      const leave = (reason: 'timeout' | 'aborted'): void => {
        if (!this.remove(w)) return;
        if (reason === 'timeout') p.deltas.timedOut++;
        resolve({ ok: false, reason, waitedMs: waitedMs() });
      };
      w.timer = setTimeout(() => leave('timeout'), Math.max(0, req.deadline - performance.now()));
      if (signal) {
        w.onAbort = () => leave('aborted');
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /**
   * A usable free slot of `p` holding at least `cost` units, as a new held slot (with the units
   * its lease holds in Redis); the ones past their time are dropped.
   */
  private take(p: PoolState, cost: number): Slot | undefined {
    const list = (this.free.get(p) ?? []).filter((f) => {
      if (this.usable(f.expiresBy)) return true;
      p.orphans.add(f.id);
      return false;
    });
    this.free.set(p, list);
    const i = list.findIndex((f) => f.units >= cost);
    if (i < 0) return undefined;
    const [f] = list.splice(i, 1);
    return this.ctx.makeSlot(p, f.id, f.expiresBy, f.units);
  }

  private remove(w: LocalWaiter): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    return true;
  }

  /** A slot released while cut off: its lease still lives in Redis, reuse it while it may be. */
  reuse(p: PoolState, slot: Slot): void {
    if (!this.usable(slot.expiresBy)) {
      p.orphans.add(slot.id);
      return;
    }
    const list = this.free.get(p) ?? [];
    list.push({ id: slot.id, expiresBy: slot.expiresBy, units: slot.units });
    this.free.set(p, list);
    this.grant(p);
  }

  private grant(p: PoolState): void {
    if (this.paused) return;
    for (;;) {
      const w = this.waiters.find((x) => x.pool === p);
      if (!w) return;
      const slot = this.take(p, w.cost);
      if (!slot) return;
      this.remove(w);
      p.deltas.admitted++;
      w.resolve({ ok: true, lease: slot, waitedMs: performance.now() - w.start });
    }
  }

  /** The free slots of `p`, handed to a recovery (which drops them in Redis). */
  takeFree(p: PoolState): string[] {
    const ids = (this.free.get(p) ?? []).map((f) => f.id);
    this.free.delete(p);
    return ids;
  }

  /** Redis is back: every local waiter continues in the global queue. */
  migrateAll(): void {
    clearTimeout(this.timer);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.resolve('migrate');
    }
  }

  /** The window is over (or the store closes): waiters get `closed`, free slots are dropped. */
  expire(): void {
    clearTimeout(this.timer);
    for (const [p, list] of this.free) for (const f of list) p.orphans.add(f.id);
    this.free.clear();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.pool.deltas.rejected++;
      w.resolve({ ok: false, reason: 'closed', waitedMs: performance.now() - w.start });
    }
  }

  /** Answer the local waiters of `pool` (or all) with `closed`. */
  reject(pool?: string): void {
    for (const w of [...this.waiters]) {
      if (pool !== undefined && w.pool.name !== pool) continue;
      this.remove(w);
      w.pool.deltas.rejected++;
      w.resolve({ ok: false, reason: 'closed', waitedMs: performance.now() - w.start });
    }
  }

  /**
   * What this process sees of `p` while cut off: the slots it may still use on its own (held
   * ones within their time plus free ones; 0 once the window is over), its own queue, and the
   * last global counters plus its local counts. No per-tenant or queueTargetMs part.
   */
  snapshot(p: PoolState): PoolSnapshot {
    let capacity = 0;
    for (const s of p.slots) if (this.usable(s.expiresBy)) capacity++;
    for (const f of this.free.get(p) ?? []) if (this.usable(f.expiresBy)) capacity++;
    const { counters: c, deltas: d } = p;
    return {
      pool: p.name,
      capacity,
      source: 'fallback',
      active: p.slots.size,
      queued: this.waiters.filter((w) => w.pool === p).length,
      counters: {
        admitted: c.admitted + d.admitted,
        rejected: c.rejected + d.rejected,
        timedOut: c.timedOut + d.timedOut,
        shed: c.shed + d.shed,
      },
      workers: p.workers,
    };
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
