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
  /**
   * A slow level: each reading spans whole seconds, so a stall of the host cannot move it and
   * the search does not measure it again to confirm it (a repeat costs two latencies).
   */
  settled?: boolean;
}

/** Measures one level; `null` when the request budget ran out before the level completed. */
export type MeasureLevel = (concurrency: number, phase: LevelPhase) => Promise<LevelVerdict | null>;

export interface SearchSettings {
  maxConcurrency: number;
  stopAtKnee: boolean;
  kneeMinGain: number;
  /**
   * The capacity is the smallest concurrency whose throughput reaches this share of the peak
   * throughput the probe measured. @default 0.95
   */
  throughputShare?: number;
}

/** How the capacity was picked among the passing levels. */
export interface SearchChoice {
  /** Highest throughput of a passing level (responses/s) and where it was measured. */
  peakThroughputRps: number;
  peakConcurrency: number;
  /** Throughput of the chosen level (responses/s). */
  throughputRps: number;
  /** Chosen throughput / peak throughput. */
  throughputShare: number;
  /** The share the rule asked for (`throughputShare` setting). */
  targetShare: number;
}

export interface SearchOutcome {
  /** `null` only when the budget ran out before any level passed. */
  capacity: number | null;
  stopReason: StopReason;
  /** Level 1 failed: there is no capacity to report. */
  levelOneFailed?: LevelVerdict;
  knee?: { peakThroughputRps: number; baseLatencyMs: number; estimate: number };
  choice?: SearchChoice;
}

export const DEFAULT_THROUGHPUT_SHARE = 0.95;

/** Share of the concurrency gain a step must turn into throughput to count as linear. */
const LINEAR = 0.9;
/** Share of the concurrency gain a step up from the chosen level must turn into throughput. */
const STEP_UP = 0.8;
/** How far under `throughputShare` the level just below may read and still be taken (see there). */
const PULL_DOWN_SLACK = 0.1;
/** A level reading at most this far under `throughputShare` is measured again before it counts as under. */
const CONFIRM_BAND = 0.2;

/** From `a` to `b`, throughput rose by at least `fraction` of the rise in concurrency. */
function scales(a: LevelVerdict, b: LevelVerdict, fraction: number): boolean {
  if (a.throughputRps <= 0 || b.throughputRps <= 0) return false;
  const gain = b.throughputRps / a.throughputRps - 1;
  return gain >= fraction * (b.concurrency / a.concurrency - 1);
}

/** 1, 2, 4, … below `max`, then `max` itself. */
export function stepLevels(max: number): number[] {
  const levels: number[] = [];
  for (let c = 1; c < max; c *= 2) levels.push(c);
  levels.push(max);
  return levels;
}

/**
 * Step-up, then binary searches, then the choice.
 *
 * 1. Step up 1, 2, 4, … `maxConcurrency` until a level fails (error rate or p99 over the
 *    limits), or, with `stopAtKnee`, until doubling concurrency raises throughput by less than
 *    `kneeMinGain` (confirmed by measuring that level once more).
 * 2. Limit search: between the last passing and the first failing level until they are
 *    adjacent, so every gap is tested (a true capacity of 3 comes out 3, not 2). A level counts
 *    as passing only when it is within the limits **and** its throughput reaches
 *    `throughputShare` of the peak so far: a backend that thrashes above its capacity while
 *    staying inside a generous latency limit is not pushed past its best level.
 * 3. The choice: the smallest passing level whose throughput reaches `throughputShare`
 *    (default 95 %) of the peak, found by a binary search between the measured level below
 *    that share and the first one above it. Latency that does not parallelise (a CPU-bound
 *    route whose single request uses several cores) no longer makes the probe stop at a level
 *    that serves two thirds of what the route can do.
 * 4. From there, step up to a higher measured passing level while it still scales at least
 *    half-linearly (throughput gain >= half the concurrency gain): at a sharp knee K - 1 and K
 *    both reach the share, and K serves more at the same latency.
 *
 * Monotonic behaviour is assumed: a level above a failing one is never tried.
 */
export async function searchCapacity(
  measure: MeasureLevel,
  settings: SearchSettings,
): Promise<SearchOutcome> {
  const share = settings.throughputShare ?? DEFAULT_THROUGHPUT_SHARE;
  let lo = 0;
  let hi: number | null = null;
  let budgetOut = false;
  let knee: SearchOutcome['knee'];
  /** Passing levels by concurrency (the latest reading of each). */
  const passing = new Map<number, LevelVerdict>();
  const peak = (): number => Math.max(0, ...[...passing.values()].map((p) => p.throughputRps));

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
  let kneeStop = false;
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
      // One low reading can be a stall: confirm before stopping (a settled one is not).
      const again = v.settled ? v : await measure(c, 'repeat');
      if (!again) {
        budgetOut = true;
        break;
      }
      if (!again.pass) {
        hi = c;
        break;
      }
      if (again.throughputRps < prev.throughputRps * (1 + settings.kneeMinGain)) {
        passing.set(c, again.throughputRps >= v.throughputRps ? again : v);
        const base = Math.min(...[...passing.values()].map((p) => p.meanMs));
        const top = peak();
        knee = { peakThroughputRps: top, baseLatencyMs: base, estimate: (top * base) / 1000 };
        kneeStop = true;
        lo = c;
        break;
      }
      v = again;
    }
    passing.set(c, v);
    prev = v;
    lo = c;
  }

  if (!budgetOut && !kneeStop && hi !== null) {
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      let v = await run(mid, 'search');
      if (!v) {
        budgetOut = true;
        break;
      }
      if (v.pass && !v.settled && v.throughputRps < share * peak()) {
        // Inside the limits but under the share: a stall only ever lowers a reading, and one
        // low reading here would end the search below the true capacity. Measure it once more
        // (the better reading counts) before the search moves below it.
        const again = await measure(mid, 'repeat');
        if (!again) {
          budgetOut = true;
          break;
        }
        if (again.pass && again.throughputRps > v.throughputRps) v = again;
      }
      if (v.pass && v.throughputRps >= share * peak()) {
        passing.set(mid, v);
        lo = mid;
      } else hi = mid;
    }
  }
  if (lo === 0) return { capacity: null, stopReason: 'budget' };

  // Only levels up to the top of the search are candidates (a level past a thrashing knee may
  // pass the limits yet serve less).
  const candidates = (): LevelVerdict[] =>
    [...passing.values()]
      .filter((p) => p.concurrency <= lo)
      .sort((a, b) => a.concurrency - b.concurrency);
  const firstAtShare = (): LevelVerdict =>
    candidates().find((p) => p.throughputRps >= share * peak()) ??
    candidates()[candidates().length - 1];

  /** Levels measured twice already (a repeat). */
  const confirmed = new Set<number>(kneeStop ? [lo] : []);
  /** Binary search for the smallest level that reaches the share of the peak. */
  const shareSearch = async (): Promise<void> => {
    let searched = false;
    for (;;) {
      const first = firstAtShare();
      const below = candidates()
        .filter((p) => p.concurrency < first.concurrency)
        .pop();
      if (!below || first.concurrency - below.concurrency <= 1) break;
      // A segment whose latency stayed flat scales linearly (Little's law): its top is the
      // choice, nothing to search. Only a rising latency (queueing, or a part of the work that
      // does not parallelise) makes a smaller level worth looking for. Mean latency is the
      // steadier reading: one stall moves a level's throughput far more.
      // (Checked between the levels the step-up measured; once the search has narrowed the
      // segment, the curve just past a queue's knee is flat-ish too and the search goes on.)
      const rise = first.meanMs / below.meanMs - 1;
      if (
        !searched &&
        (rise <= settings.kneeMinGain / 2 ||
          (rise <= settings.kneeMinGain && scales(below, first, LINEAR)))
      )
        break;
      // Nearly flat (latency up by at most 2 x kneeMinGain): one stall inflating the top
      // level's mean latency looks the same. Measure that level once more (the better reading
      // counts) before searching below it: a search costs several levels and, on a reading
      // the stall made low, picks a level below the true capacity.
      if (
        !searched &&
        !first.settled &&
        !confirmed.has(first.concurrency) &&
        rise <= 2 * settings.kneeMinGain
      ) {
        confirmed.add(first.concurrency);
        const again = await measure(first.concurrency, 'repeat');
        if (!again) {
          budgetOut = true;
          break;
        }
        if (again.pass && again.throughputRps > first.throughputRps)
          passing.set(first.concurrency, again);
        continue;
      }
      // A stall only ever lowers a reading, and one low reading here would push the choice up:
      // a level that reads a little under the share is measured once more (the better reading
      // counts) before the search moves above it.
      if (
        !confirmed.has(below.concurrency) &&
        !below.settled &&
        below.throughputRps >= (share - CONFIRM_BAND) * peak()
      ) {
        confirmed.add(below.concurrency);
        const again = await measure(below.concurrency, 'repeat');
        if (!again) {
          budgetOut = true;
          break;
        }
        if (again.pass && again.throughputRps > below.throughputRps)
          passing.set(below.concurrency, again);
        continue;
      }
      const mid = Math.floor((below.concurrency + first.concurrency) / 2);
      searched = true;
      const v = await run(mid, 'search');
      if (!v) {
        budgetOut = true;
        break;
      }
      // A failing level below passing ones is noise: it is not a candidate, and the search
      // goes on above it.
      passing.set(mid, v.pass ? v : { ...v, throughputRps: 0 });
    }
  };

  let chosen: LevelVerdict;
  let top: number;
  let levels: LevelVerdict[];
  /** The choice stepped up from the first level at the share. */
  let stepped = false;
  for (;;) {
    if (!budgetOut) await shareSearch();
    chosen = firstAtShare();
    stepped = false;
    top = peak();
    levels = candidates();
    // Step up while the next measured level still scales.
    let stalled: LevelVerdict | undefined;
    for (const next of levels.filter((p) => p.concurrency > chosen.concurrency)) {
      if (!scales(chosen, next, STEP_UP)) {
        stalled = next;
        break;
      }
      chosen = next;
      stepped = true;
    }
    // The step up failed, but the higher level did not serve less: a stall there looks the
    // same. Measure it once more (the better reading counts) and decide again.
    if (
      budgetOut ||
      !stalled ||
      stalled.settled ||
      confirmed.has(stalled.concurrency) ||
      stalled.throughputRps < chosen.throughputRps
    )
      break;
    confirmed.add(stalled.concurrency);
    const again = await measure(stalled.concurrency, 'repeat');
    if (!again) {
      budgetOut = true;
      break;
    }
    if (again.pass && again.throughputRps > stalled.throughputRps)
      passing.set(stalled.concurrency, again);
  }
  const base = Math.min(...levels.map((p) => p.meanMs));
  const estimate = (top * base) / 1000;
  const lower = levels.filter((p) => p.concurrency < chosen.concurrency).pop();
  if (
    !stepped &&
    lower &&
    lower.concurrency === chosen.concurrency - 1 &&
    !scales(lower, chosen, LINEAR) &&
    chosen.meanMs > lower.meanMs * (1 + settings.kneeMinGain / 2) &&
    lower.throughputRps >= (share - PULL_DOWN_SLACK) * top &&
    estimate * (1 - settings.kneeMinGain / 2) >= lower.concurrency
  ) {
    // The probe's own turnaround (client, loopback) is part of every latency it measures: at
    // a queue's true capacity K the server's slots sit idle for that turnaround, so level K
    // reads a little under the peak. Under the balancer the next request is already waiting
    // in its queue, so K serves the peak. The Little's-law knee (peak x lowest latency,
    // turnaround included) tells such a flat-latency curve apart from one whose latency rises
    // because it does not parallelise; only then is the level just below taken.
    chosen = lower;
  }
  const peakLevel = [...passing.values()].find((p) => p.throughputRps === top) ?? chosen;
  const choice: SearchChoice = {
    peakThroughputRps: top,
    peakConcurrency: peakLevel.concurrency,
    throughputRps: chosen.throughputRps,
    throughputShare: top > 0 ? Math.round((chosen.throughputRps / top) * 1000) / 1000 : 1,
    targetShare: share,
  };
  const stopReason: StopReason = budgetOut
    ? 'budget'
    : kneeStop
      ? 'knee'
      : hi === null
        ? 'max_concurrency'
        : 'limit';
  return {
    capacity: chosen.concurrency,
    stopReason,
    knee:
      knee ?? (kneeStop ? { peakThroughputRps: top, baseLatencyMs: base, estimate } : undefined),
    choice,
  };
}
