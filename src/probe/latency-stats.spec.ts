import { percentile, SampleBuffer, summarizeLatencies } from './latency-stats';

describe('percentile (nearest rank)', () => {
  it('is the single sample for n = 1', () => {
    expect(percentile([42], 0.99)).toBe(42);
    expect(percentile([42], 0.5)).toBe(42);
  });

  it('never exceeds the largest sample on tiny samples', () => {
    for (let n = 1; n <= 150; n++) {
      const sorted = Array.from({ length: n }, (_, i) => i + 1);
      const p99 = percentile(sorted, 0.99);
      expect(p99).toBeLessThanOrEqual(n);
      expect(sorted).toContain(p99);
    }
  });

  it('is the maximum below 100 samples and skips the top outlier from 100 on', () => {
    const ninetynine = Array.from({ length: 99 }, (_, i) => i + 1);
    expect(percentile(ninetynine, 0.99)).toBe(99);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 0.99)).toBe(99);
    const twoHundred = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(percentile(twoHundred, 0.99)).toBe(198);
  });

  it('gives the lower median on even counts and the middle on odd', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3], 0.5)).toBe(2);
  });

  it('is 0 on no samples', () => {
    expect(percentile([], 0.99)).toBe(0);
  });
});

describe('summarizeLatencies', () => {
  it('sorts numerically without touching the input', () => {
    const samples = [100, 9, 20, 3];
    const s = summarizeLatencies(samples);
    expect(samples).toEqual([100, 9, 20, 3]);
    expect(s).toEqual({ count: 4, p50: 9, p99: 100, max: 100, mean: 33 });
  });

  it('two samples: p99 is the larger, never above it', () => {
    expect(summarizeLatencies([5, 7]).p99).toBe(7);
  });
});

describe('SampleBuffer', () => {
  it('grows past its initial size', () => {
    const b = new SampleBuffer();
    for (let i = 0; i < 1000; i++) b.push(i);
    expect(b.length).toBe(1000);
    expect(b.values()[999]).toBe(999);
    expect(b.values().length).toBe(1000);
  });
});
