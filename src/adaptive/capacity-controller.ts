/** What one interval of a pool's traffic looked like, as the controller sees it. */
export interface AdaptiveObservation {
  /** The capacity in force during the interval. */
  capacity: number;
  /** Requests admitted per second (in steady state, completions per second). */
  throughputRps: number;
  /** Mean time a request held its slot, ms (Little's law: mean in flight / throughput). */
  latencyMs: number;
  /** Requests admitted in the interval: too few and the interval says nothing. */
  completions: number;
  /** The cap was binding: requests waited, or every slot was busy most of the time. */
  saturated: boolean;
}

export interface ControllerSettings {
  /** Lowest capacity the controller may set (>= 1). */
  min: number;
  /** Highest capacity the controller may set. */
  max: number;
  /** Fewest admissions for an interval to count. @default 10 */
  minCompletions?: number;
  /** Latency above `reference x (1 + this)` counts as "slower". @default 0.5 */
  latencyTolerance?: number;
  /** Consecutive slow intervals before a step down. @default 2 */
  confirmIntervals?: number;
  /** Consecutive healthy saturated intervals before a step up is tried. @default 3 */
  upAfterIntervals?: number;
  /** Largest step up, as a fraction of the capacity (at least 1). @default 0.25 */
  upStep?: number;
  /**
   * A failed step up doubles the wait before the next one, up to this factor: at most
   * `upAfterIntervals x maxBackoff` intervals pass between two tries, which bounds how long a
   * recovered backend waits to be noticed. @default 3
   */
  maxBackoff?: number;
}

/** How far a healthy interval pulls the reference latency toward itself. */
const REFERENCE_DRIFT = 0.05;

/** A change the controller asks for. */
export interface ControllerDecision {
  capacity: number;
  reason: string;
}

interface Trial {
  direction: 'up' | 'down';
  /** Intervals still to skip: the first one after a change is a transition (old requests drain). */
  settle: number;
  from: number;
  throughputRps: number;
  latencyMs: number;
}

/**
 * Adaptive capacity as a small hill climber with hysteresis, fed one observation per interval.
 *
 * - **Down** when latency rises without a throughput gain: `confirmIntervals` saturated
 *   intervals with latency above `reference x (1 + latencyTolerance)` step the capacity down
 *   toward `capacity x reference / latency`, by at most half and at least 1. The interval after
 *   the next judges the step (the next one is a transition: requests admitted under the old
 *   capacity are still draining): throughput held (>= 95 %) or latency down by a third keeps
 *   it; otherwise the backend is simply slower at every concurrency, so the step is undone
 *   and the slower latency becomes the new reference (no more steps down for it).
 * - **Up** when it recovers: after `upAfterIntervals` saturated intervals at the reference
 *   latency, one step up (+`upStep`, at least 1). Kept when latency stayed within half the
 *   tolerance, or throughput rose by at least a third of the concurrency added with latency
 *   within the tolerance. A kept step is followed at once by the next, twice as large (at most
 *   half the capacity): a backend that got its capacity back is climbed in a few steps, not
 *   one step per backoff. A failed step is undone, the next try is half as large (at least 1:
 *   the climb closes in on the true capacity instead of jumping over it for ever) and the wait
 *   before it doubles (up to `maxBackoff` x), so a backend at its true capacity sees an
 *   occasional trial, not an oscillation.
 * - Never below `min` (>= 1) or above `max`; one change per interval; intervals that are not
 *   saturated or have fewer than `minCompletions` admissions change nothing (light traffic
 *   says nothing about capacity).
 */
export class CapacityController {
  private readonly s: Required<ControllerSettings>;
  private reference: number | null;
  private slowStreak = 0;
  private healthyStreak = 0;
  private backoff = 1;
  /** Size of the next step up; `null`: `upStep` of the capacity. */
  private step: number | null = null;
  /**
   * The capacity a step down left, with the search state above it: a climb back stops there
   * and takes that state up again (what was learnt above it still holds), instead of trying
   * past it with a fresh backoff.
   */
  private ceiling: { capacity: number; backoff: number; step: number | null } | null = null;
  private trial: Trial | null = null;

  constructor(settings: ControllerSettings, referenceLatencyMs: number | null = null) {
    const min = Math.max(1, Math.floor(settings.min));
    const given = Object.fromEntries(
      Object.entries(settings).filter(([, v]) => v !== undefined),
    ) as ControllerSettings;
    this.s = {
      minCompletions: 10,
      latencyTolerance: 0.5,
      confirmIntervals: 2,
      upAfterIntervals: 3,
      upStep: 0.25,
      maxBackoff: 3,
      ...given,
      min,
      max: Math.max(min, Math.floor(settings.max)),
    };
    this.reference = referenceLatencyMs;
  }

  /** Latency the controller currently treats as healthy, ms (`null` until it has seen one). */
  get referenceLatencyMs(): number | null {
    return this.reference;
  }

  /** Force the next healthy interval to try a step up (the periodic live re-probe). */
  reprobe(): void {
    this.backoff = 1;
    this.healthyStreak = Math.max(this.healthyStreak, this.s.upAfterIntervals - 1);
  }

  /** Feed one interval; returns a new capacity, or `null` to keep the current one. */
  observe(o: AdaptiveObservation): ControllerDecision | null {
    if (o.completions < this.s.minCompletions || o.throughputRps <= 0 || o.latencyMs <= 0) {
      return null;
    }
    const c = o.capacity;
    if (this.trial && this.trial.settle > 0) {
      this.trial.settle--;
      return null;
    }
    if (this.trial) return this.judge(this.trial, o);
    if (!o.saturated) {
      // Not enough demand to bind the cap: nothing to learn about it.
      this.slowStreak = 0;
      this.healthyStreak = 0;
      return null;
    }
    if (this.reference === null) {
      this.reference = o.latencyMs;
      return null;
    }
    const slow = o.latencyMs > this.reference * (1 + this.s.latencyTolerance);
    if (slow) {
      this.healthyStreak = 0;
      if (++this.slowStreak < this.s.confirmIntervals || c <= this.s.min) return null;
      this.slowStreak = 0;
      const toward = Math.floor((c * this.reference) / o.latencyMs);
      const next = clamp(Math.max(toward, Math.ceil(c / 2)), this.s.min, c - 1);
      if (!this.ceiling || c > this.ceiling.capacity)
        this.ceiling = { capacity: c, backoff: this.backoff, step: this.step };
      this.step = null;
      this.trial = { direction: 'down', from: c, settle: 1, ...pick(o) };
      return {
        capacity: next,
        reason:
          `latency ${Math.round(o.latencyMs)} ms > ${Math.round(this.reference)} ms ` +
          `x ${1 + this.s.latencyTolerance} at ${Math.round(o.throughputRps)}/s`,
      };
    }
    this.slowStreak = 0;
    // The reference follows the fastest healthy interval (a start under ramp-up reads slow),
    // drifting back up a little with every healthy one so one low outlier does not pin it.
    this.reference =
      o.latencyMs < this.reference
        ? o.latencyMs
        : this.reference + REFERENCE_DRIFT * (o.latencyMs - this.reference);
    // A mildly slow interval neither counts toward a step up nor starts the count over.
    if (o.latencyMs > this.reference * (1 + this.s.latencyTolerance / 2) || c >= this.s.max) {
      return null;
    }
    if (++this.healthyStreak < this.s.upAfterIntervals * this.backoff) return null;
    this.healthyStreak = 0;
    return this.up(o, `latency at its reference (${Math.round(o.latencyMs)} ms): trying more`);
  }

  /** Start a step up from `o.capacity`. */
  private up(o: AdaptiveObservation, reason: string): ControllerDecision {
    const c = o.capacity;
    const step = this.step ?? Math.max(1, Math.round(c * this.s.upStep));
    const top = this.ceiling && c < this.ceiling.capacity ? this.ceiling.capacity : this.s.max;
    const next = Math.min(top, c + step);
    this.trial = { direction: 'up', from: c, settle: 1, ...pick(o) };
    return { capacity: next, reason };
  }

  private judge(t: Trial, o: AdaptiveObservation): ControllerDecision | null {
    this.trial = null;
    const c = o.capacity;
    if (t.direction === 'down') {
      // Kept when throughput held, or when latency fell by at least a third (the backend was
      // thrashing: fewer at once are much faster, whatever a noisy throughput reading says).
      if (o.throughputRps >= t.throughputRps * 0.95 || o.latencyMs <= t.latencyMs * (2 / 3)) {
        // Kept. Still slow: the next slow interval may step again at once.
        if (this.reference !== null && o.latencyMs > this.reference * (1 + this.s.latencyTolerance))
          this.slowStreak = this.s.confirmIntervals - 1;
        return null;
      }
      // Fewer in flight served less: the backend is slower at every level. Undo, and accept the
      // slower latency as the reference.
      this.reference = t.latencyMs;
      if (this.ceiling && t.from >= this.ceiling.capacity) this.ceiling = null;
      return {
        capacity: t.from,
        reason: `step down lost throughput (${Math.round(o.throughputRps)}/s < ${Math.round(t.throughputRps)}/s): undone`,
      };
    }
    const wanted = (c / t.from - 1) / 3;
    const ref = this.reference ?? t.latencyMs;
    // At an unchanged latency more in flight is more throughput (Little's law), whatever one
    // noisy throughput reading says; beyond that, the gain has to show.
    const flat = o.latencyMs <= ref * (1 + this.s.latencyTolerance / 2);
    const gained =
      o.throughputRps >= t.throughputRps * (1 + wanted) &&
      o.latencyMs <= ref * (1 + this.s.latencyTolerance);
    if (flat || gained) {
      this.backoff = 1;
      this.reference = Math.max(ref, o.latencyMs);
      // Slow start: the step paid, so the next one follows at once, twice as large.
      this.step = Math.min(2 * (c - t.from), Math.max(1, Math.floor(c / 2)));
      if (this.ceiling && c >= this.ceiling.capacity) {
        // Back where the backend was before it slowed down: go on as it was going there.
        this.backoff = this.ceiling.backoff;
        this.step = this.ceiling.step;
        this.ceiling = null;
        return null;
      }
      if (c >= this.s.max) return null;
      return this.up(o, `step up to ${c} kept (${Math.round(o.latencyMs)} ms): trying more`);
    }
    this.backoff = Math.min(this.s.maxBackoff, this.backoff * 2);
    this.step = Math.max(1, Math.floor((c - t.from) / 2));
    return {
      capacity: t.from,
      reason: `step up to ${c} gained too little (${Math.round(t.throughputRps)} -> ${Math.round(o.throughputRps)}/s): undone`,
    };
  }
}

function pick(o: AdaptiveObservation): { throughputRps: number; latencyMs: number } {
  return { throughputRps: o.throughputRps, latencyMs: o.latencyMs };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}
