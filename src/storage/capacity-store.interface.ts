/**
 * Where a pool's capacity number came from.
 * - `manual`: set in options (`capacity`) or `@Balanced({ capacity })`.
 * - `probe`: measured by the probe (this start, or reused from an earlier one).
 * - `default`: no capacity and probing disabled; `defaultCapacity` applies.
 * - `probing`: a probe is running; requests wait until it publishes a number.
 * - `fallback`: the shared store is unreachable and a local share of the cap applies.
 * - `adaptive`: set by the adaptive controller (`adaptive: true`), which follows the backend.
 */
export type CapacitySource = 'manual' | 'probe' | 'default' | 'probing' | 'fallback' | 'adaptive';

/** Why a request was not admitted. */
export type RejectReason =
  /** The pool's queue already holds `maxQueue` waiters (503). */
  | 'queue_full'
  /** The wait passed the queue timeout (504). */
  | 'timeout'
  /** The caller aborted (client disconnected); nothing is sent. */
  | 'aborted'
  /** Admission is closed: unhealthy or shutting down (503). */
  | 'closed'
  /** `queueTargetMs`: the queue is standing and this request would wait past the target (503 at once). */
  | 'shed'
  /** The caller's tenant already has `maxQueuePerTenant` waiters (503 for that tenant only). */
  | 'tenant_queue_full'
  /** `maxQueueCost`: the units already queued plus this request's would pass it (503). */
  | 'queue_cost_full';

export interface AcquireOptions {
  /** How long the request may wait in the queue, in milliseconds. */
  timeoutMs: number;
  /** Largest number of waiters in the pool's queue; `0` means no queueing at all. */
  maxQueue: number;
  /** Aborts the wait (the client went away). An aborted waiter never receives a slot. */
  signal?: AbortSignal;
  /**
   * Fair-share key of the caller, already bounded by the caller (see `normalizeTenant`).
   * `undefined`: the pool's one shared default tenant. Waiters are served round-robin across
   * tenants, each tenant's own in arrival order (see `queue-order.ts`).
   */
  tenant?: string;
  /** Higher is served first (integer, default 0), aged by `priorityAging`. */
  priority?: number;
  /**
   * How many places in the queue one step of priority is worth (default 1,000): a request
   * overtakes only waiters that queued less than `priorityAging x (its priority - theirs)`
   * rounds before it, so a waiting request is never overtaken for ever (see `queue-order.ts`).
   */
  priorityAging?: number;
  /** Largest number of waiters of one tenant; undefined or 0: no per-tenant limit. */
  maxQueuePerTenant?: number;
  /**
   * Bounded queue delay in ms (undefined: off). While the queue is standing (every request
   * granted from it over the last `queueTargetIntervalMs(target)` waited longer than the target),
   * a request that would wait longer than the target is answered `shed` at once.
   */
  queueTargetMs?: number;
  /**
   * Units this request holds while it runs (a positive integer, see `cost-units.ts`); default 1.
   * The pool's capacity counts units: the request is admitted when its units fit in capacity
   * minus the units in flight, or when nothing is in flight (a request larger than the whole
   * capacity runs alone). The queue is strict head-of-line: nobody overtakes a head that does
   * not fit yet.
   */
  cost?: number;
  /** Most units waiting in the pool's queue (`maxQueueCost`); undefined or 0: no bound. */
  maxQueueCost?: number;
}

/** A held slot. `release()` is idempotent: the second and later calls do nothing. */
export interface Lease {
  readonly pool: string;
  readonly id: string;
  /**
   * Aborted when the store can no longer prove this slot while the work still runs: the lease
   * could not be renewed before it expired (Redis), or `close()` gave it back at shutdown. The
   * reason is a `LeaseLostError`. Stores whose slots cannot be lost may leave it out.
   */
  readonly signal?: AbortSignal;
  /** Units the slot holds now (its cost, as corrected by `resize`); 1 when not costed. */
  readonly units?: number;
  /**
   * Correct the units this running request holds (e.g. once the real token count is known):
   * fewer units go back to the pool at once (waiters that now fit are admitted), more are
   * claimed at once, never refused (the work already runs; the pool admits nothing new until
   * the units in flight fit its capacity again). Ignored after `release()`. `units` must be a
   * positive integer (see `checkUnits`). Stores that cannot correct leave it out.
   */
  resize?(units: number): Promise<void>;
  release(): Promise<void>;
}

export type AcquireResult =
  | { readonly ok: true; readonly lease: Lease; readonly waitedMs: number }
  | {
      readonly ok: false;
      readonly reason: RejectReason;
      readonly waitedMs: number;
      /** `shed` only: seconds until the queue ahead is expected to drain (observed drain rate). */
      readonly retryAfterS?: number;
    };

/** Counters kept per pool since the store started (Redis: since the keys were created). */
export interface PoolCounters {
  admitted: number;
  /** 503s: queue full, unhealthy, shutting down. */
  rejected: number;
  /** 504s: queue wait expired. */
  timedOut: number;
  /** Of `rejected`: 503s from `queueTargetMs` (shed) and `maxQueuePerTenant`. */
  shed: number;
}

/** One tenant's count in a snapshot's top lists. */
export interface TenantCount {
  tenant: string;
  count: number;
}

/**
 * Per-tenant numbers of a pool, bounded: at most `TOP_TENANTS` entries per list, largest first.
 * `admitted` counts since the store started, approximately for tenants that left the tracked
 * set (a bounded heavy-hitters table, see `queue-order.ts`).
 */
export interface TenantSnapshot {
  queued: TenantCount[];
  admitted: TenantCount[];
}

export interface PoolSnapshot {
  pool: string;
  /** `null` while unknown (probing). */
  capacity: number | null;
  source: CapacitySource;
  active: number;
  queued: number;
  counters: PoolCounters;
  /**
   * Processes serving this pool, as this process last saw them: `1` for the memory store;
   * for Redis, the live workers at this process's last heartbeat (the divisor of the local
   * share while Redis is unreachable).
   */
  workers: number;
  /** Top tenants by queued and by admitted; absent when no request of the pool named a tenant. */
  tenants?: TenantSnapshot;
  /**
   * `queueTargetMs`: true while the queue counts as standing (new requests that would wait past
   * the target are shed); `drainMs` the observed mean gap between grants from the queue (null
   * until measured).
   */
  overload?: { shedding: boolean; drainMs: number | null };
  /**
   * Pools that counted a cost other than 1 (or `maxQueueCost`): their numbers in units. `active`
   * the units in flight, `queued` the units waiting, `admitted` the units admitted since the
   * store started (the adaptive controller's throughput). Absent: every request counted 1.
   */
  units?: { active: number; queued: number; admitted: number };
  /**
   * Leases lost since the store started (Redis: by every worker): slots whose work was still
   * running when their lease could not be renewed before it expired. Absent: never lost.
   */
  lostLeases?: number;
}

/** A probe result as stored, with enough metadata to show and to decide on reuse. */
export interface StoredProbeResult {
  maxConcurrency: number;
  /** ISO timestamp of the end of the probe. */
  measuredAt: string;
  durationMs: number;
  /** Free-form report (level table, stop reason) for stats and the dashboard. */
  report: unknown;
}

/** A lock held while one process probes a pool (Redis: shared by every worker). */
export interface ProbeLock {
  /** Keep the lock alive; returns false when it was lost to another owner. */
  renew(): Promise<boolean>;
  /** Release only if still the owner. */
  release(): Promise<void>;
}

/**
 * A probe token published in the store: the header value that marks one probe's requests, so
 * every worker serving the pool lets them past admission (see `publishProbeToken`).
 */
export interface PublishedProbeToken {
  /** Extend its life by its TTL; false when it is gone or was replaced (another prober). */
  renew(): Promise<boolean>;
  /** Delete it, only if it is still this token. */
  withdraw(): Promise<void>;
}

/** A probe token as read back from the store, with how long it still lives. */
export interface ProbeTokenEntry {
  token: string;
  /** Milliseconds until it expires (unless renewed). */
  ttlMs: number;
}

/**
 * The storage behind admission: per-pool capacity, slots, FIFO waiters and counters.
 * The in-memory store serves one process; the Redis store shares all of it between workers
 * and hosts. Both pass the same contract suite (`test/contract/capacity-store.contract.ts`).
 */
export interface CapacityStore {
  /** Connect / load scripts. Called once before the first use. */
  init(): Promise<void>;
  /**
   * Set a pool's capacity. `null` means unknown: acquirers wait in the queue (they are not
   * admitted past an unmeasured cap and not dropped) until a number is set.
   * Raising the capacity admits waiters at once.
   */
  setCapacity(pool: string, capacity: number | null, source: CapacitySource): Promise<void>;
  /**
   * Take a slot: at once if one is free and nobody waits ahead (FIFO), else wait in the queue.
   * Exactly one of lease / timeout / aborted / queue_full / closed results, never a lease that
   * nobody can release.
   */
  acquire(pool: string, options: AcquireOptions): Promise<AcquireResult>;
  /**
   * Optional synchronous fast path: a lease when a slot is free and nobody waits, else `null`
   * (then the caller uses `acquire`). Stores that need I/O to decide do not implement it.
   * `tenant` (as in `AcquireOptions`) only counts the grant in the pool's per-tenant numbers;
   * `cost` as in `AcquireOptions` (default 1).
   */
  tryAcquire?(pool: string, tenant?: string, cost?: number): Lease | null;
  /**
   * Answer every current waiter of `pool` (or of every pool when omitted) with `closed`.
   * Used when health fails and at shutdown. Only this process's waiters.
   */
  rejectWaiters(pool?: string): void;
  /** Count a 503 decided outside the store (health gate, shutdown). */
  recordRejection(pool: string): void;
  /** Slots held by this process right now (drained at shutdown). */
  localActive(): number;
  /** False while the backing service (Redis) cannot be reached. */
  isReachable(): boolean;
  /** The numbers of one pool (Redis: global over all workers). */
  snapshot(pool: string): Promise<PoolSnapshot>;
  /** Persist a probe result (Redis: shared, read by the other workers). */
  saveProbeResult(pool: string, result: StoredProbeResult): Promise<void>;
  getProbeResult(pool: string): Promise<StoredProbeResult | null>;
  /** Try to become the prober of `pool`. `null` when someone else holds the lock. */
  tryProbeLock(pool: string, ttlMs: number): Promise<ProbeLock | null>;
  /**
   * Publish the token of the probe this process runs on `pool` (it holds the probe lock) for
   * `ttlMs`, replacing any earlier one. Redis: every worker reads it; memory: this process only.
   */
  publishProbeToken(pool: string, token: string, ttlMs: number): Promise<PublishedProbeToken>;
  /** The probe tokens currently published for `pool` (at most one per pool today). */
  probeTokens(pool: string): Promise<ProbeTokenEntry[]>;
  /** Release every slot this process holds and stop timers. Closes only what it created. */
  close(): Promise<void>;
}

/** Injection token for the store; same name as the interface, as in @nestjs/throttler. */
export const CapacityStore = Symbol('BALANCER:CAPACITY_STORE');
