import type { AdaptiveStatus, CapacityChange } from '../admission/adaptive-status';
import type { ResolvedPool } from '../admission/pool-registry';
import type { ProbeLock } from '../storage/capacity-store.interface';
import type { PoolAdaptiveSettings } from './adaptive-settings';
import type { CapacityController } from './capacity-controller';
import type { PoolSampler } from './pool-sampler';

/** The state the adaptive service keeps for one pool (its controller, sampler, lock, timer). */
export interface PoolControl {
  pool: ResolvedPool;
  /** `null` while the pool is not adaptive (it may become so when its probe is cut short). */
  settings: PoolAdaptiveSettings | null;
  reason: AdaptiveStatus['reason'];
  sampler: PoolSampler;
  controller: CapacityController | null;
  bounds: { min: number; max: number } | null;
  /** Capacity this controller set last (an outside change restarts the controller). */
  lastSet: number | null;
  intervalStart: number;
  /** Length of the current interval, ms. */
  intervalMs: number;
  /** Latest slot time measured, ms (sizes an automatic interval before a reference exists). */
  lastLatencyMs: number | null;
  lastReprobe: number;
  lock: ProbeLock | null;
  lockTtlMs: number;
  lastRenew: number;
  timer?: NodeJS.Timeout;
  busy: boolean;
  history: CapacityChange[];
  /** `finishedAt` of the probe whose outcome was checked for "cut short" (read once each). */
  checkedProbe: string | null;
}

/** The stats view of a pool's control, or `null` when the pool is not adaptive. */
export function statusOf(c: PoolControl): AdaptiveStatus | null {
  if (!c.settings) return null;
  return {
    min: c.bounds?.min ?? c.settings.min ?? null,
    max: c.bounds?.max ?? c.settings.max ?? null,
    interval_s: c.intervalMs / 1000,
    interval_auto: c.settings.intervalMs === null,
    reason: c.reason,
    controller: c.lock !== null,
    reference_latency_ms:
      c.controller?.referenceLatencyMs === null || c.controller === null
        ? null
        : Math.round(c.controller.referenceLatencyMs * 100) / 100,
    history: [...c.history],
  };
}
