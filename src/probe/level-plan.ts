import type { LevelPlan } from './load-generator';
import type { LevelStats, ProbeResult, ProbeSettings } from './probe.types';

/** Shortest warm-up of a level scaled by `warmupLatencies`, ms (new connections, a queue forming). */
export const WARMUP_FLOOR_MS = 50;

/**
 * Warm-up of a fast level: `warmupLatencies` x the expected latency (the level measured below
 * it), at least `WARMUP_FLOOR_MS`, at most `warmupMs`. `warmupLatencies` 0: always `warmupMs`.
 */
export function warmupFor(
  s: Pick<ProbeSettings, 'warmupMs' | 'warmupLatencies'>,
  expectedMs: number,
): number {
  if (s.warmupLatencies <= 0) return s.warmupMs;
  return Math.min(s.warmupMs, Math.max(WARMUP_FLOOR_MS, s.warmupLatencies * expectedMs));
}

/**
 * How each level of one probe is run and judged, from what the probe measured so far:
 *
 * - **The latency limit.** `latencyThresholdMs` when it is set (absolute). Otherwise relative to
 *   the endpoint itself: `latencyFactor` (4) x the p50 of level 1 (the endpoint unloaded, in
 *   the same probe), never below `latencyFloorMs` (1 s, so a stall of the host does not fail a
 *   millisecond route). Level 1 itself has no latency limit then: it is the reference, and only
 *   errors and timeouts fail it.
 * - **The request timeout.** `requestTimeoutMs` when set, else 5 x the level's limit (level 1
 *   of the relative rule: the probe's whole time budget).
 * - **The warm-up.** `warmupLatencies` (3) x the expected latency, between 50 ms and `warmupMs`
 *   (see `warmupFor()`).
 * - **Paced by latency.** A level whose expected latency (the mean of the nearest level
 *   measured at or below it, or the preflight request) is at least `slowLatencyMs` (500 ms)
 *   runs as a slow level (see `LevelPlan.slow`): its verdict needs one latency per sender, not
 *   a fixed number of latencies and samples.
 */
export class LevelPlanner {
  constructor(
    private readonly s: ProbeSettings,
    /** Latency of the preflight request, ms. */
    private readonly firstMs: number,
  ) {}

  /** p50 of the first level-1 measurement with responses: the endpoint unloaded. */
  unloadedP50(levels: readonly LevelStats[]): number | undefined {
    return levels.find((l) => l.concurrency === 1 && l.requests > 0)?.p50Ms;
  }

  /** Latency limit of the next level, ms (`Infinity`: none yet). */
  limitMs(levels: readonly LevelStats[]): number {
    if (this.s.latencyThresholdMs !== undefined) return this.s.latencyThresholdMs;
    const base = this.unloadedP50(levels);
    if (base === undefined) return Infinity;
    return Math.max(this.s.latencyFactor * base, this.s.latencyFloorMs);
  }

  plan(concurrency: number, levels: readonly LevelStats[]): LevelPlan {
    const limitMs = this.limitMs(levels);
    const timeoutMs =
      this.s.requestTimeoutMs ?? (Number.isFinite(limitMs) ? 5 * limitMs : this.s.maxDurationMs);
    const near = levels
      .filter((l) => l.concurrency <= concurrency && l.requests > 0)
      .sort((a, b) => b.concurrency - a.concurrency)[0];
    const expectedMs = near ? near.meanMs : this.firstMs;
    const slow = expectedMs >= this.s.slowLatencyMs;
    return {
      limitMs,
      timeoutMs,
      slow,
      warm: slow && concurrency === 1,
      warmupMs: warmupFor(this.s, expectedMs),
    };
  }

  thresholds(levels: readonly LevelStats[]): ProbeResult['thresholds'] {
    const limit = this.limitMs(levels);
    return {
      errorThreshold: this.s.errorThreshold,
      latencyThresholdMs: Number.isFinite(limit) ? Math.round(limit * 100) / 100 : 0,
      latencyRule: this.s.latencyThresholdMs !== undefined ? 'absolute' : 'relative',
      unloadedP50Ms: this.unloadedP50(levels),
    };
  }
}
