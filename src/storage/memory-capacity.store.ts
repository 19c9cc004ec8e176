import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type {
  AcquireOptions,
  AcquireResult,
  CapacitySource,
  CapacityStore,
  Lease,
  PoolSnapshot,
  ProbeLock,
  ProbeTokenEntry,
  PublishedProbeToken,
  StoredProbeResult,
} from './capacity-store.interface';
import { checkUnits } from './cost-units';
import { LeaseAbort, LeaseLostError } from './lease-abort';
import { MemoryPool } from './memory/memory-pool';
import { sharedPortWorker } from './shared-port-worker';

/**
 * Single-process store: pools (slots, ordered queue, overload policies: `memory/memory-pool.ts`),
 * the leases this process holds, probe results, probe locks and probe tokens.
 */
export class MemoryCapacityStore implements CapacityStore {
  private readonly pools = new Map<string, MemoryPool>();
  private readonly held = new Set<MemoryLease>();
  private readonly probeResults = new Map<string, StoredProbeResult>();
  private readonly probeLocks = new Map<string, { token: string; expiresAt: number }>();
  private readonly probeTokenEntries = new Map<string, { token: string; expiresAt: number }>();
  private nextLease = 0;

  constructor(private readonly settings: { logger?: boolean } = {}) {}

  async init(): Promise<void> {
    const worker = this.settings.logger ? sharedPortWorker() : null;
    if (worker) {
      new Logger('BalancerMemoryStore').warn(
        `storage is memory in ${worker}: each worker process has its own caps, queues and probe, ` +
          `so N workers admit up to N x capacity and the startup probe measures a queue; ` +
          `use storage: { type: 'redis', url } to share them (docs/redis.md: "Several workers on one host")`,
      );
    }
  }

  private pool(name: string): MemoryPool {
    let p = this.pools.get(name);
    if (!p) {
      p = new MemoryPool(name, this.issue);
      this.pools.set(name, p);
    }
    return p;
  }

  async setCapacity(pool: string, capacity: number | null, source: CapacitySource): Promise<void> {
    const p = this.pool(pool);
    p.capacity = capacity;
    p.source = source;
    p.drain();
  }

  tryAcquire(pool: string, tenant?: string, cost?: number): Lease | null {
    return this.pool(pool).tryGrant(tenant, cost);
  }

  acquire(pool: string, options: AcquireOptions): Promise<AcquireResult> {
    return this.pool(pool).acquire(options);
  }

  /** The lease of a slot `p` just granted (a small object: this runs on every admission). */
  private readonly issue = (p: MemoryPool, units: number): Lease => {
    const lease = new MemoryLease(p, this.nextLease++, this.held, units);
    this.held.add(lease);
    return lease;
  };

  rejectWaiters(pool?: string): void {
    if (pool === undefined) for (const p of this.pools.values()) p.rejectWaiters();
    else this.pool(pool).rejectWaiters();
  }

  recordRejection(pool: string): void {
    this.pool(pool).counters.rejected++;
  }

  localActive(): number {
    return this.held.size;
  }

  async snapshot(pool: string): Promise<PoolSnapshot> {
    return this.pool(pool).snapshot();
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
    for (const lease of [...this.held]) {
      this.held.delete(lease);
      lease.slotOf.released(lease.units);
      // Work still running after the drain: its slot is given back now, so tell it to stop.
      lease.giveBack();
    }
  }
}

const RELEASED: Promise<void> = Promise.resolve();

/** A held slot of the memory store; `release()` is idempotent. */
class MemoryLease implements Lease {
  private abort?: LeaseAbort;

  constructor(
    readonly slotOf: MemoryPool,
    private readonly n: number,
    private readonly held: Set<MemoryLease>,
    public units: number,
  ) {}

  get pool(): string {
    return this.slotOf.name;
  }

  get id(): string {
    return String(this.n);
  }

  /** Aborted only when `close()` gives the slot back while the work still runs. */
  get signal(): AbortSignal {
    this.abort ??= new LeaseAbort();
    return this.abort.signal;
  }

  giveBack(): void {
    this.abort ??= new LeaseAbort();
    this.abort.abort(new LeaseLostError(this.slotOf.name, 'shutdown'));
  }

  async resize(units: number): Promise<void> {
    const to = checkUnits(units, 'the corrected cost');
    if (!this.held.has(this) || to === this.units) return;
    const from = this.units;
    this.units = to;
    this.slotOf.resized(from, to);
  }

  release(): Promise<void> {
    // Not held: released before, or close() already gave the slot back (a handler that
    // outlived shutdown must not count twice).
    if (!this.held.delete(this)) return RELEASED;
    this.slotOf.released(this.units);
    this.slotOf.drain();
    return RELEASED;
  }
}
