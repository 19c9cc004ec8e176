/**
 * Exact percentiles from the raw samples (nearest rank). With n samples the q-th percentile is
 * the ceil(q * n)-th smallest value, so it is always one of the samples and never exceeds the
 * largest one. With fewer than 100 samples p99 is the maximum.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  if (q <= 0) return sorted[0];
  if (q >= 1) return sorted[n - 1];
  const rank = Math.ceil(q * n);
  return sorted[Math.min(n, Math.max(1, rank)) - 1];
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Summary of latency samples (ms). The input is not modified. */
export function summarizeLatencies(samples: ArrayLike<number>): LatencySummary {
  const n = samples.length;
  if (n === 0) return { count: 0, p50: 0, p99: 0, max: 0, mean: 0 };
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return {
    count: n,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[n - 1],
    mean: sum / n,
  };
}

/** A growable list of float samples without per-sample allocation. */
export class SampleBuffer {
  private data = new Float64Array(256);
  private n = 0;

  get length(): number {
    return this.n;
  }

  push(value: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = value;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.n);
  }
}
