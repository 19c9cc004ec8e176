import type { CapacitySource, Lease, PoolCounters } from '../capacity-store.interface';
import type { LeaseAbort } from '../lease-abort';
import { poolKeys, type PoolKeys } from './keys';

/** A slot this process holds: a lease id recorded in Redis. */
export interface Slot extends Lease {
  /**
   * Lower bound of the lease's expiry in Redis, on this process's monotonic clock
   * (`performance.now()`): the send time of the last command that set it to now + leaseTtl.
   */
  expiresBy: number;
  released: boolean;
  /**
   * Its lease could not be renewed before `expiresBy` (less the loss margin), or Redis said it
   * was gone: never renewed or recorded again; its signal is aborted. Still counted as held
   * until the request gives it back.
   */
  lost: boolean;
  readonly abort: LeaseAbort;
  /** Units the lease holds in Redis (1 unless costed). */
  units: number;
  resize(units: number): Promise<void>;
}

/** How a heartbeat or recovery names a slot: its id, with `#units` when it holds other than 1. */
export function slotArg(slot: Slot): string {
  return slot.units === 1 ? slot.id : `${slot.id}#${slot.units}`;
}

/**
 * What this process knows of one pool: its settings as last seen in Redis, the slots it holds
 * (the lease table), the ids it must drop from Redis when it can, and the counts it kept while
 * Redis was unreachable.
 */
export class PoolState {
  readonly keys: PoolKeys;
  /** Last capacity this process set or read; `undefined` = never known. */
  capacity: number | null | undefined = undefined;
  source: CapacitySource = 'probing';
  /** A `setCapacity` that could not reach Redis: written (overwriting) on recovery. */
  pendingCapacity?: { capacity: number | null; source: CapacitySource };
  /** The pool's epoch in Redis as last seen ('' = never seen). */
  epoch = '';
  /** Live workers of this pool at the last heartbeat (>= 1). */
  workers = 1;
  /** Last global counters read from Redis. */
  counters: PoolCounters = zero();
  /** Counts decided while Redis was unreachable, added to Redis on recovery. */
  deltas: PoolCounters = zero();
  /** Leases lost that Redis has not counted yet (added on recovery). */
  lostDelta = 0;
  /** Last global count of lost leases read from Redis. */
  lost = 0;
  /** Ids this process no longer uses but Redis may still hold (dropped on recovery). */
  readonly orphans = new Set<string>();
  /** Slots in use by a request. */
  readonly slots = new Set<Slot>();

  constructor(
    readonly name: string,
    prefix: string,
  ) {
    this.keys = poolKeys(prefix, name);
  }

  /** What to tell Redis about capacity in scripts that restore missing settings. */
  settings(): { capacity: string; source: string } {
    if (this.capacity === undefined) return { capacity: '', source: '' };
    return { capacity: this.capacity === null ? '' : String(this.capacity), source: this.source };
  }

  /** Take in the settings a script returned (capacity -1 = unknown, source '' = none). */
  learn(capacity: number, source: string): void {
    if (!source) return;
    this.capacity = capacity < 0 ? null : capacity;
    this.source = source as CapacitySource;
  }

  addDeltas(d: PoolCounters, sign: 1 | -1): void {
    this.deltas.admitted += sign * d.admitted;
    this.deltas.rejected += sign * d.rejected;
    this.deltas.timedOut += sign * d.timedOut;
    this.deltas.shed += sign * d.shed;
  }
}

export function zero(): PoolCounters {
  return { admitted: 0, rejected: 0, timedOut: 0, shed: 0 };
}

/** The pools this process has used, created on first use. */
export class PoolTable {
  private readonly pools = new Map<string, PoolState>();

  constructor(
    private readonly prefix: string,
    private readonly onCreate: (p: PoolState) => void,
  ) {}

  get(name: string): PoolState {
    let p = this.pools.get(name);
    if (p) return p;
    p = new PoolState(name, this.prefix);
    this.pools.set(name, p);
    this.onCreate(p);
    return p;
  }

  all(): PoolState[] {
    return [...this.pools.values()];
  }

  /** Slots held by this process in every pool. */
  held(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.slots.size;
    return n;
  }
}
