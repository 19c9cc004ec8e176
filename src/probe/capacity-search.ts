import type { LevelPhase, StopReason } from './probe.types';

/** What the search needs to know about one measured level. */
export interface LevelVerdict {
  concurrency: number;
  /** Within the error and latency limits. */
  pass: boolean;
  /**
   * Failed on latency only while its median stayed within the limit: a stall or a long tail.
   * Such a level is measured once more (level 1: up to twice) before it counts as failed.
   */
  marginal: boolean;
  throughputRps: number;
  meanMs: number;
}

/** Measures one level; `null` when the request budget ran out before the level completed. */
export type MeasureLevel = (concurrency: number, phase: LevelPhase) => Promise<LevelVerdict | null>;

export interface SearchSettings {
  maxConcurrency: number;
  stopAtKnee: boolean;
  kneeMinGain: number;
}

export interface SearchOutcome {
  /** `null` only when the budget ran out before any level passed. */
  capacity: number | null;
  stopReason: StopReason;
  /** Level 1 failed: there is no capacity to report. */
  levelOneFailed?: LevelVerdict;
  knee?: { peakThroughputRps: number; baseLatencyMs: number; estimate: number };
}

/** 1, 2, 4, … below `max`, then `max` itself. */
export function stepLevels(max: number): number[] {
  const levels: number[] = [];
  for (let c = 1; c < max; c *= 2) levels.push(c);
  levels.push(max);
  return levels;
}

/**
 * Step-up then binary search.
 *
 * 1. Step up 1, 2, 4, … `maxConcurrency` until a level fails.
 * 2. Binary search between the last passing level and the first failing one until they are
 *    adjacent, so every gap is tested (a true capacity of 3 comes out 3, not 2).
 * 3. With `stopAtKnee`, the step-up also stops when doubling concurrency raises throughput by
 *    less than `kneeMinGain` (confirmed by measuring that level once more). The capacity is then
 *    the knee of the throughput curve: peak throughput x lowest mean latency (Little's law: the
 *    concurrency where the rising line c / latency meets the throughput plateau), times
 *    `1 - kneeMinGain / 2`, rounded.
 *
 * Monotonic behaviour is assumed: a level above a failing one is never tried.
 */
export async function searchCapacity(
  measure: MeasureLevel,
  settings: SearchSettings,
): Promise<SearchOutcome> {
  let lo = 0;
  let hi: number | null = null;
  let budgetOut = false;
  const passing: LevelVerdict[] = [];

  /**
   * A level, measured again when it failed marginally: once, or twice for level 1, whose
   * failure ends the probe.
   */
  const run = async (c: number, phase: LevelPhase): Promise<LevelVerdict | null> => {
    let v = await measure(c, phase);
    for (let repeats = c === 1 ? 2 : 1; v && !v.pass && v.marginal && repeats > 0; repeats--) {
      v = await measure(c, 'repeat');
    }
    return v;
  };

  let prev: LevelVerdict | null = null;
  /** `prev` raised throughput by at least 90 % of its rise in concurrency over the level before. */
  let prevScaledLinearly = false;
  for (const c of stepLevels(settings.maxConcurrency)) {
    let v = await run(c, 'step');
    if (!v) {
      budgetOut = true;
      break;
    }
    if (!v.pass) {
      if (c === 1) return { capacity: null, stopReason: 'limit', levelOneFailed: v };
      hi = c;
      break;
    }
    if (
      settings.stopAtKnee &&
      prev &&
      v.throughputRps < prev.throughputRps * (1 + settings.kneeMinGain)
    ) {
      // One low reading can be a stall: confirm before stopping.
      const again = await measure(c, 'repeat');
      if (!again) {
        budgetOut = true;
        break;
      }
      if (!again.pass) {
        hi = c;
        break;
      }
      passing.push(v);
      if (again.throughputRps < prev.throughputRps * (1 + settings.kneeMinGain)) {
        passing.push(again);
        const peak = Math.max(...passing.map((p) => p.throughputRps));
        const base = Math.min(...passing.map((p) => p.meanMs));
        const estimate = (peak * base) / 1000;
        // Real curves bend before the asymptotes cross (and the crossing includes the client's
        // own overhead), so aim a little below it.
        const aim = estimate * (1 - settings.kneeMinGain / 2);
        // When the previous level still scaled almost linearly and its latency did not rise
        // above the base, the endpoint served that many at once at full speed: noise in the
        // estimate must not undercut it. (Throughput alone is not enough: one low reading at
        // the level before makes a queueing level look linear.)
        const fullSpeed = prevScaledLinearly && prev.meanMs <= base * (1 + settings.kneeMinGain);
        const floor = fullSpeed ? prev.concurrency : 1;
        return {
          capacity: Math.min(c, Math.max(floor, Math.round(aim))),
          stopReason: 'knee',
          knee: { peakThroughputRps: peak, baseLatencyMs: base, estimate },
        };
      }
      v = again;
    }
    passing.push(v);
    prevScaledLinearly =
      prev !== null &&
      v.throughputRps / prev.throughputRps >= 0.9 * (v.concurrency / prev.concurrency);
    prev = v;
    lo = c;
  }

  if (!budgetOut && hi !== null) {
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const v = await run(mid, 'search');
      if (!v) {
        budgetOut = true;
        break;
      }
      if (v.pass) lo = mid;
      else hi = mid;
    }
  }
  if (budgetOut) return { capacity: lo > 0 ? lo : null, stopReason: 'budget' };
  if (hi === null) return { capacity: lo, stopReason: 'max_concurrency' };
  return { capacity: lo, stopReason: 'limit' };
}
