import type { PoolSnapshot } from '../storage/capacity-store.interface';
import type { AdaptiveObservation } from './capacity-controller';

/**
 * Turns snapshots of one pool, taken several times per interval, into one observation: the
 * admission rate from the pool's `admitted` counter (global with Redis), the mean number in
 * flight from the samples, and the mean time a slot was held by Little's law (in flight /
 * rate). The pool counts as saturated when at least half the samples found waiters or every
 * slot busy.
 *
 * A costed pool (its snapshot has `units`) is read in units: its capacity counts units, so the
 * rate is units admitted per second and the mean in flight is units; Little's law then gives the
 * mean time a unit was held, and the controller's proportional steps work on units unchanged.
 * `completions` stays a count of requests (too few requests say nothing, whatever their size).
 */
export class PoolSampler {
  private samples = 0;
  private activeSum = 0;
  private busy = 0;
  private start: { at: number; admitted: number; units: number } | null = null;

  add(s: PoolSnapshot, at: number): void {
    if (!this.start) this.start = { at, admitted: s.counters.admitted, units: unitsAdmitted(s) };
    this.samples++;
    const active = s.units?.active ?? s.active;
    this.activeSum += active;
    if (s.queued > 0 || (s.capacity !== null && active >= s.capacity)) this.busy++;
  }

  /** Admissions since the interval started (0 before its first sample). */
  admittedSince(s: PoolSnapshot): number {
    return this.start ? Math.max(0, s.counters.admitted - this.start.admitted) : 0;
  }

  /** The interval since the last call (or the first sample); `null` with fewer than 2 samples. */
  take(s: PoolSnapshot, at: number, capacity: number): AdaptiveObservation | null {
    const start = this.start;
    const samples = this.samples;
    const activeSum = this.activeSum;
    const busy = this.busy;
    this.start = { at, admitted: s.counters.admitted, units: unitsAdmitted(s) };
    this.samples = 0;
    this.activeSum = 0;
    this.busy = 0;
    if (!start || samples < 2 || at <= start.at) return null;
    const completions = Math.max(0, s.counters.admitted - start.admitted);
    const served = Math.max(0, unitsAdmitted(s) - start.units);
    const throughputRps = (served * 1000) / (at - start.at);
    const meanActive = activeSum / samples;
    return {
      capacity,
      throughputRps,
      latencyMs: throughputRps > 0 ? (meanActive * 1000) / throughputRps : 0,
      completions,
      saturated: busy * 2 >= samples,
    };
  }
}

/** Units admitted so far (requests for a pool that is not costed). */
function unitsAdmitted(s: PoolSnapshot): number {
  return s.units?.admitted ?? s.counters.admitted;
}
