import type { AcquireOptions, AcquireResult } from '../capacity-store.interface';
import { DEFAULT_PRIORITY_AGING } from '../queue-order';
import type { CommandRunner } from './command-runner';
import type { PoolState, PoolTable, Slot } from './pool-state';

/** Timings of the store. Derived from `leaseTtl`; tests may shorten them. */
export interface RedisStoreTuning {
  /** How often this process renews its leases and worker entry. @default leaseTtl / 3 */
  heartbeatMs: number;
  /** Mean interval of the polling fallback while this process has waiters. @default min(500, leaseTtl / 4) */
  pollMs: number;
  /** A command that takes longer counts as Redis being unreachable. @default min(2000, leaseTtl / 2) */
  commandTimeoutMs: number;
  /** How long `init()` waits for the first connection before starting cut off. @default 3000 */
  connectWaitMs: number;
  /** Mean interval between reconnection checks while cut off. @default 500 */
  recoverMs: number;
  /**
   * How long after its last confirmed heartbeat a cut-off worker keeps admitting on the slots it
   * holds in Redis. Shorter than the lease TTL: the rest is the margin. @default 0.6 x leaseTtl
   */
  fallbackWindowMs: number;
  /** How long a grant holds its slot until the waiter's process claims it. @default min(leaseTtl, 1000) */
  claimMs: number;
  /**
   * A lease not renewed by `lossMarginMs` before the time it may expire in Redis counts as lost
   * (its signal fires): room for the timer to run late and the work to stop before the slot can
   * be granted again. @default min(1000, leaseTtl / 10)
   */
  lossMarginMs: number;
  /**
   * A pool's state created on a Redis that started less than this ago waits until start + this
   * before its first grant: that Redis may have replaced one (restart without persistence) whose
   * workers still run requests on their old leases. @default storage.restartHold ?? leaseTtl
   */
  restartHoldMs: number;
}

/** The tuning of a store: derived from `leaseTtl` and `fallbackWindow` (s), then overridden. */
export function resolveTuning(
  storage: { leaseTtl: number; fallbackWindow?: number; restartHold?: number },
  overrides: Partial<RedisStoreTuning> = {},
): RedisStoreTuning {
  const ttlMs = Math.round(storage.leaseTtl * 1000);
  const window = storage.fallbackWindow ?? storage.leaseTtl * 0.6;
  const tuning = {
    heartbeatMs: Math.max(50, Math.floor(ttlMs / 3)),
    pollMs: Math.min(500, Math.max(20, Math.floor(ttlMs / 4))),
    commandTimeoutMs: Math.min(2000, Math.max(100, Math.floor(ttlMs / 2))),
    connectWaitMs: 3000,
    recoverMs: 500,
    fallbackWindowMs: Math.round(window * 1000),
    claimMs: Math.min(ttlMs, 1000),
    lossMarginMs: Math.min(1000, Math.floor(ttlMs / 10)),
    restartHoldMs: Math.round((storage.restartHold ?? storage.leaseTtl) * 1000),
    ...overrides,
  };
  if (tuning.fallbackWindowMs >= ttlMs)
    throw new Error('storage.fallbackWindow must be shorter than storage.leaseTtl');
  return tuning;
}

/**
 * Where admission runs.
 * - `online`: every slot is a lease in Redis; waiters sit in the global queue.
 * - `fallback`: Redis is unreachable; the slots this process holds in Redis are reused for its
 *   own requests until the fallback window ends.
 * - `expired`: still unreachable after the window; nothing is admitted (503) until Redis is back.
 * - `recovering`: Redis answers again; one ADOPT per pool is in flight. Nothing is admitted
 *   locally meanwhile, and releases wait for its outcome.
 */
export type StoreMode = 'online' | 'fallback' | 'expired' | 'recovering';

/** What the parts of the store share. */
export interface StoreContext {
  readonly ttlMs: number;
  readonly tuning: RedisStoreTuning;
  readonly processId: string;
  readonly pools: PoolTable;
  readonly runner: () => CommandRunner;
  mode(): StoreMode;
  isClosed(): boolean;
  /** The first three arguments of every script: ttlMs, claimMs, grantPrefix. */
  common(): Array<string | number>;
  /** A fresh id `<processId>:<n>`. */
  newId(): string;
  /** A held slot of `p`. */
  makeSlot(p: PoolState, id: string, expiresBy: number, units: number): Slot;
  /** A command failed: Redis counts as unreachable. */
  degrade(err: unknown): void;
  /** `slot` can no longer be proven: abort its signal, count it, never renew it again. */
  lose(p: PoolState, slot: Slot, why: string): void;
  /** Continue an acquire in local admission (Redis became unreachable while it waited). */
  acquireLocal(p: PoolState, req: AcquireRequest): Promise<AcquireResult>;
  warn(text: string): void;
  log(text: string): void;
}

export function jitter(ms: number): number {
  return ms * (0.5 + Math.random());
}

/** One acquire as the global queue and the local fallback take it: the options, resolved. */
export interface AcquireRequest {
  /** `performance.now()` when the acquire began, and when its wait ends. */
  readonly start: number;
  readonly deadline: number;
  readonly maxQueue: number;
  readonly signal?: AbortSignal;
  /** `''`: the pool's shared default tenant. */
  readonly tenant: string;
  readonly priority: number;
  readonly priorityAging: number;
  /** 0: no per-tenant limit. */
  readonly maxQueuePerTenant: number;
  readonly queueTargetMs?: number;
  /** Units (`undefined`: not costed, 1 unit). */
  readonly cost?: number;
  /** 0: no bound on queued units. */
  readonly maxQueueCost: number;
}

export function acquireRequest(options: AcquireOptions, start: number): AcquireRequest {
  return {
    start,
    deadline: start + Math.max(0, options.timeoutMs),
    maxQueue: options.maxQueue,
    signal: options.signal,
    tenant: options.tenant || '',
    priority: options.priority ?? 0,
    priorityAging: options.priorityAging ?? DEFAULT_PRIORITY_AGING,
    maxQueuePerTenant: options.maxQueuePerTenant ?? 0,
    queueTargetMs: options.queueTargetMs,
    cost: options.cost,
    maxQueueCost: options.maxQueueCost ?? 0,
  };
}
