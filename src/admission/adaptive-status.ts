/** One capacity change, kept for stats and the dashboard. */
export interface CapacityChange {
  at: string;
  capacity: number;
  reason: string;
}

/** What `/balancer/stats` shows of an adaptive pool (`adaptive` of the endpoint). */
export interface AdaptiveStatus {
  min: number | null;
  max: number | null;
  /** Length of the current interval, s (automatic unless `interval` is set). */
  interval_s: number;
  /** `true`: the interval follows the pool's latency (no `interval` set). */
  interval_auto: boolean;
  /**
   * `options`: `adaptive` is on for the pool; `probe`: it is off, but the pool's probe was cut
   * short or failed, so its capacity keeps converging from live traffic.
   */
  reason: 'options' | 'probe';
  /** This process runs the pool's controller (with Redis: one worker of all). */
  controller: boolean;
  reference_latency_ms: number | null;
  /** Changes made by this process's controller, oldest first (the last 50). */
  history: CapacityChange[];
}

/**
 * Where stats read a pool's adaptive status from. The adaptive controller (`adaptive/`, which
 * builds on admission) provides it; admission only names the contract, so the import goes
 * down the folder order.
 */
export interface AdaptiveStatusSource {
  status(pool: string): AdaptiveStatus | null;
}

export const ADAPTIVE_STATUS = Symbol('nestjs-balancer:adaptive-status');
