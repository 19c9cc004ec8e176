/**
 * When a fast level's verdict is clear before its window ends (see `runLevel`). Pure rules,
 * plus the record of the requests in flight they read.
 */

/** Share of responses over the limit that breaks a p99. */
const P99_SHARE = 0.01;
/** See `p99Broken()`. */
const PROJECTION_MARGIN = 1.5;
/** See `steady()`. */
const STEADY_SE = 0.01;

/**
 * The level's p99 is over the limit whatever the rest of its window brings: the responses over
 * the limit (answered late, failed, or still running past the limit) already exceed 1 % of the
 * responses the full window is expected to measure (the completion rate so far over `spanMs`,
 * plus the requests in flight at its end), with a margin of 1.5.
 */
export function p99Broken(
  bad: number,
  done: number,
  elapsedMs: number,
  spanMs: number,
  concurrency: number,
): boolean {
  if (bad === 0 || elapsedMs <= 0) return false;
  const expected = done * Math.max(1, spanMs / elapsedMs) + concurrency;
  return bad > P99_SHARE * PROJECTION_MARGIN * expected;
}

/** Standard error of the mean latency within 1 % of the mean. */
export function steady(mean: number, meanOfSquares: number, n: number): boolean {
  if (n <= 1 || mean <= 0) return false;
  const variance = Math.max(0, meanOfSquares - mean * mean);
  return Math.sqrt(variance / n) <= STEADY_SE * mean;
}

/** Start times of the requests in flight. */
export class InFlightStarts {
  private readonly starts = new Set<{ at: number }>();

  add(at: number): { at: number } {
    const token = { at };
    this.starts.add(token);
    return token;
  }

  delete(token: { at: number }): void {
    this.starts.delete(token);
  }

  /**
   * Of the requests started at or after `from` (the measured ones): how many are in flight and
   * how many of those have run longer than `limitMs` at `now` (they will be answered over it).
   */
  measured(from: number, now: number, limitMs: number): { running: number; overdue: number } {
    let running = 0;
    let overdue = 0;
    for (const s of this.starts) {
      if (s.at < from) continue;
      running++;
      if (now - s.at > limitMs) overdue++;
    }
    return { running, overdue };
  }
}
