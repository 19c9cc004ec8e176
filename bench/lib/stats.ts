/**
 * Exact latency statistics: every sample is kept and sorted, so percentiles are real samples
 * (nearest rank), never estimates that can exceed the largest observation.
 */
export interface LatencySummary {
  count: number;
  meanMs: number | null;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

/** Nearest-rank percentile of an ascending array: the smallest sample with >= p% at or below it. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function summarize(samples: number[]): LatencySummary {
  if (samples.length === 0) {
    return { count: 0, meanMs: null, p50Ms: null, p90Ms: null, p99Ms: null, maxMs: null };
  }
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    meanMs: sum / sorted.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1],
  };
}

/** Sliding record of the last second's successes, for live lines (the demo driver). */
export class WindowedLatency {
  private samples: number[] = [];

  add(ms: number): void {
    this.samples.push(ms);
  }

  /** Summary of the samples since the last call, then start a new window. */
  take(): LatencySummary {
    const s = summarize(this.samples);
    this.samples = [];
    return s;
  }
}
