import { performance } from 'node:perf_hooks';
import { probeRequestUnits } from '../admission/cost-policy';
import type { ResolvedPool } from '../admission/pool-registry';
import { CapacityStore } from '../storage/capacity-store.interface';
import { MAX_PRIORITY } from '../storage/queue-order';

/**
 * Where a pool's interim cap (its cap while its capacity is being probed) came from:
 * `stored` the last probe result in the store, whatever its age (a forced or expired re-probe);
 * `minimum` none: 1.
 */
export type InterimSource = 'stored' | 'minimum';

export interface InterimCap {
  capacity: number;
  from: InterimSource;
}

/** How long a probe request waits for a shared slot before asking again (it never gives up). */
const SHARED_WAIT_MS = 60_000;

/** The interim cap of `pool`: its last stored probe result (any age), else 1. */
export async function interimCapOf(store: CapacityStore, pool: string): Promise<InterimCap> {
  const stored = await store.getProbeResult(pool).catch(() => null);
  const n = stored?.maxConcurrency;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1
    ? { capacity: n, from: 'stored' }
    : { capacity: 1, from: 'minimum' };
}

/**
 * The slots a probe of one pool may use while real requests keep being served (the pool is
 * never closed for the whole probe). While level `c` is measured, with interim cap `I`:
 *
 * - the pool's cap in the store (global with Redis) is `min(I, c)`: real requests take those
 *   slots through ordinary admission, never more;
 * - `c - min(I, c)` of the probe's requests are **dedicated**: they go straight to the endpoint
 *   (their token bypasses admission);
 * - the probe's other `min(I, c)` senders take a lease of the pool like a request (ahead of
 *   queued requests, so a busy route cannot starve the probe and each real request waits behind
 *   at most one probe request), then send with the token.
 *
 * So probe load plus real requests never exceed `c` (the dedicated ones plus the pool's cap), and
 * when every shared sender wants a slot the endpoint sees exactly `c` in flight, real requests
 * included: the level's latencies are the latencies at `c`. A shared sender that waits for a
 * slot waits because a real request holds one; `occupiedByOthers()` gives that time so the
 * level's Little's-law check counts those requests as in flight (they were).
 *
 * One instance per probe; `level()` is called before each level and the preflight.
 */
export class ProbeSlots {
  private dedicated = 0;
  private dedicatedBusy = 0;
  private current: number | null = null;
  /** Units of one probe request (costed pools: caps here count probe requests x these). */
  private readonly units: number;
  /** Spans (performance.now()) during which a shared sender waited for a slot. */
  private waits: Array<[number, number]> = [];

  constructor(
    private readonly store: CapacityStore,
    private readonly pool: ResolvedPool,
    readonly interim: InterimCap,
  ) {
    this.units = probeRequestUnits(pool);
  }

  /** The level being measured now, or `null` before the first. */
  get level(): number | null {
    return this.current;
  }

  /** Set the pool up for a level of `concurrency` probe requests (1 for the preflight). */
  async startLevel(concurrency: number): Promise<void> {
    const shared = Math.min(this.interim.capacity, concurrency);
    this.dedicated = concurrency - shared;
    this.dedicatedBusy = 0;
    this.waits = [];
    this.current = concurrency;
    this.pool.probeStatus = { ...this.pool.probeStatus, level: concurrency };
    await this.store.setCapacity(this.pool.key, shared * this.units, 'probing');
  }

  /** Wait for a slot for one probe request; resolves with the function that gives it back. */
  async enter(signal: AbortSignal): Promise<() => void> {
    if (this.dedicatedBusy < this.dedicated) {
      this.dedicatedBusy++;
      let left = false;
      return () => {
        if (left) return;
        left = true;
        this.dedicatedBusy--;
      };
    }
    const lease = this.store.tryAcquire?.(this.pool.key, undefined, this.pool.cost && this.units);
    if (lease) return () => void lease.release();
    const waitStart = performance.now();
    try {
      for (;;) {
        signal.throwIfAborted();
        const r = await this.store.acquire(this.pool.key, {
          timeoutMs: SHARED_WAIT_MS,
          maxQueue: Number.MAX_SAFE_INTEGER,
          priority: MAX_PRIORITY,
          signal,
          cost: this.pool.cost && this.units,
        });
        if (r.ok) return () => void r.lease.release();
        if (r.reason !== 'timeout') {
          signal.throwIfAborted();
          // Closed (unhealthy, shutting down): the probe's own requests are not gated; wait a
          // moment and ask again rather than spin.
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    } finally {
      this.waits.push([waitStart, performance.now()]);
    }
  }

  /**
   * Slot-milliseconds within `[from, to]` (performance.now()) that real requests held while a
   * shared sender waited for them: add `/ (to - from)` to the probe's own Little's-law reading.
   */
  occupiedByOthers(from: number, to: number): number {
    let ms = 0;
    for (const [a, b] of this.waits) ms += Math.max(0, Math.min(b, to) - Math.max(a, from));
    return ms;
  }
}

/**
 * Put `pool` on its interim cap when no capacity is in force yet (a fresh store), under the
 * probe lock so it never overwrites the cap of a probe another worker runs. Best effort: a store
 * that cannot answer leaves the pool as it is (its requests wait, as before a number exists).
 */
export async function openInterim(
  store: CapacityStore,
  pool: ResolvedPool,
  lockTtlMs: number,
): Promise<void> {
  try {
    if ((await store.snapshot(pool.key)).capacity !== null) return;
    const lock = await store.tryProbeLock(pool.key, lockTtlMs);
    if (!lock) return; // another worker probes: its levels set the cap
    try {
      if ((await store.snapshot(pool.key)).capacity !== null) return;
      const interim = await interimCapOf(store, pool.key);
      await store.setCapacity(pool.key, interim.capacity * probeRequestUnits(pool), 'probing');
      pool.probeStatus = { ...pool.probeStatus, interim };
    } finally {
      await lock.release().catch(() => undefined);
    }
  } catch {
    // Store unreachable: nothing set; the probe (or its failure) sets the cap later.
  }
}
