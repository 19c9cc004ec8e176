import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type {
  AcquireOptions,
  AcquireResult,
  CapacitySource,
  CapacityStore,
  Lease,
  PoolCounters,
  PoolSnapshot,
  ProbeLock,
  ProbeTokenEntry,
  PublishedProbeToken,
  RejectReason,
  StoredProbeResult,
} from './capacity-store.interface';
import { sharedPortWorker } from './shared-port-worker';

interface Waiter {
  readonly enqueuedAt: number;
  settle(result: AcquireResult): void;
}

interface PoolState {
  capacity: number | null;
  source: CapacitySource;
  active: number;
  /** Insertion-ordered: the first key is the oldest waiter; delete is O(1). */
  queue: Map<number, Waiter>;
  counters: PoolCounters;
}

/**
 * Single-process store. Everything happens on the event loop, so a waiter is settled exactly
 * once: by a slot, its timer, its abort signal, or `rejectWaiters`, whichever runs first, and
 * the others find it gone from the queue.
 */
export class MemoryCapacityStore implements CapacityStore {
  private readonly pools = new Map<string, PoolState>();
  private readonly held = new Map<string, string>();
  private readonly probeResults = new Map<string, StoredProbeResult>();
  private readonly probeLocks = new Map<string, { token: string; expiresAt: number }>();
  private readonly probeTokenEntries = new Map<string, { token: string; expiresAt: number }>();
  private nextWaiter = 0;
  private nextLease = 0;

  constructor(private readonly settings: { logger?: boolean } = {}) {}

  async init(): Promise<void> {
    const worker = this.settings.logger ? sharedPortWorker() : null;
    if (worker) {
      new Logger('BalancerMemoryStore').warn(
        `storage is memory in ${worker}: each worker process has its own caps, queues and probe, ` +
          `so N workers admit up to N x capacity and the startup probe measures a queue; ` +
          `use storage: { type: 'redis', url } to share them (README: "Several workers on one host")`,
      );
    }
  }

  private pool(name: string): PoolState {
    let p = this.pools.get(name);
    if (!p) {
      p = {
        capacity: null,
        source: 'probing',
        active: 0,
        queue: new Map(),
        counters: { admitted: 0, rejected: 0, timedOut: 0, shed: 0 },
      };
      this.pools.set(name, p);
    }
    return p;
  }

  async setCapacity(pool: string, capacity: number | null, source: CapacitySource): Promise<void> {
    const p = this.pool(pool);
    p.capacity = capacity;
    p.source = source;
    this.drain(pool, p);
  }

  tryAcquire(pool: string): Lease | null {
    const p = this.pool(pool);
    if (p.capacity !== null && p.active < p.capacity && p.queue.size === 0)
      return this.grant(pool, p);
    return null;
  }

  acquire(pool: string, options: AcquireOptions): Promise<AcquireResult> {
    const p = this.pool(pool);
    const start = performance.now();
    // A caller that is already gone gets no slot, free or not (as in the Redis store).
    if (options.signal?.aborted) {
      return Promise.resolve({ ok: false, reason: 'aborted', waitedMs: 0 });
    }
    if (p.capacity !== null && p.active < p.capacity && p.queue.size === 0) {
      return Promise.resolve({ ok: true, lease: this.grant(pool, p), waitedMs: 0 });
    }
    if (p.queue.size >= options.maxQueue) {
      p.counters.rejected++;
      return Promise.resolve({ ok: false, reason: 'queue_full', waitedMs: 0 });
    }
    return new Promise<AcquireResult>((resolve) => {
      const id = this.nextWaiter++;
      const signal = options.signal;
      const onAbort = (): void => fail('aborted');
      const timer = setTimeout(() => fail('timeout'), Math.max(0, options.timeoutMs));
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        p.queue.delete(id);
      };
      const fail = (reason: RejectReason): void => {
        if (!p.queue.has(id)) return;
        cleanup();
        if (reason === 'timeout') p.counters.timedOut++;
        else if (reason === 'closed') p.counters.rejected++;
        resolve({ ok: false, reason, waitedMs: performance.now() - start });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      p.queue.set(id, {
        enqueuedAt: start,
        settle: (result) => {
          if (!p.queue.has(id)) return;
          cleanup();
          if (!result.ok && result.reason === 'closed') p.counters.rejected++;
          resolve(result.ok ? { ...result, waitedMs: performance.now() - start } : result);
        },
      });
    });
  }

  private grant(pool: string, p: PoolState): Lease {
    p.active++;
    p.counters.admitted++;
    const id = String(this.nextLease++);
    this.held.set(id, pool);
    let released = false;
    return {
      pool,
      id,
      release: async () => {
        if (released) return;
        released = true;
        // close() already gave this slot back: a handler that outlived shutdown must not count twice.
        if (!this.held.delete(id)) return;
        p.active--;
        this.drain(pool, p);
      },
    };
  }

  /** Hand free slots to the oldest waiters. */
  private drain(pool: string, p: PoolState): void {
    while (p.capacity !== null && p.active < p.capacity && p.queue.size > 0) {
      const [, waiter] = p.queue.entries().next().value as [number, Waiter];
      waiter.settle({ ok: true, lease: this.grant(pool, p), waitedMs: 0 });
    }
  }

  rejectWaiters(pool?: string): void {
    const targets = pool === undefined ? [...this.pools.values()] : [this.pool(pool)];
    for (const p of targets) {
      for (const waiter of [...p.queue.values()]) {
        waiter.settle({
          ok: false,
          reason: 'closed',
          waitedMs: performance.now() - waiter.enqueuedAt,
        });
      }
    }
  }

  recordRejection(pool: string): void {
    this.pool(pool).counters.rejected++;
  }

  localActive(): number {
    return this.held.size;
  }

  async snapshot(pool: string): Promise<PoolSnapshot> {
    const p = this.pool(pool);
    return {
      pool,
      capacity: p.capacity,
      source: p.source,
      active: p.active,
      queued: p.queue.size,
      counters: { ...p.counters },
      workers: 1,
    };
  }

  async saveProbeResult(pool: string, result: StoredProbeResult): Promise<void> {
    this.probeResults.set(pool, result);
  }

  async getProbeResult(pool: string): Promise<StoredProbeResult | null> {
    return this.probeResults.get(pool) ?? null;
  }

  async tryProbeLock(pool: string, ttlMs: number): Promise<ProbeLock | null> {
    const now = Date.now();
    const current = this.probeLocks.get(pool);
    if (current && current.expiresAt > now) return null;
    const token = randomUUID();
    this.probeLocks.set(pool, { token, expiresAt: now + ttlMs });
    return {
      renew: async () => {
        const lock = this.probeLocks.get(pool);
        if (!lock || lock.token !== token) return false;
        lock.expiresAt = Date.now() + ttlMs;
        return true;
      },
      release: async () => {
        if (this.probeLocks.get(pool)?.token === token) this.probeLocks.delete(pool);
      },
    };
  }

  /** This process only: with the memory store, no other process accepts the token. */
  async publishProbeToken(
    pool: string,
    token: string,
    ttlMs: number,
  ): Promise<PublishedProbeToken> {
    this.probeTokenEntries.set(pool, { token, expiresAt: Date.now() + ttlMs });
    const mine = (): boolean => {
      const entry = this.probeTokenEntries.get(pool);
      return entry !== undefined && entry.token === token && entry.expiresAt > Date.now();
    };
    return {
      renew: async () => {
        if (!mine()) return false;
        this.probeTokenEntries.set(pool, { token, expiresAt: Date.now() + ttlMs });
        return true;
      },
      withdraw: async () => {
        if (mine()) this.probeTokenEntries.delete(pool);
      },
    };
  }

  async probeTokens(pool: string): Promise<ProbeTokenEntry[]> {
    const entry = this.probeTokenEntries.get(pool);
    const ttlMs = entry ? entry.expiresAt - Date.now() : 0;
    return entry && ttlMs > 0 ? [{ token: entry.token, ttlMs }] : [];
  }

  isReachable(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.rejectWaiters();
    for (const [id, pool] of [...this.held]) {
      this.held.delete(id);
      const p = this.pools.get(pool);
      if (p) p.active--;
    }
  }
}
