import { searchCapacity, type LevelVerdict, type MeasureLevel } from './capacity-search';
import { servedRate } from './probe.service';

/**
 * A pure queue of K = 12 slots of S = 50 ms as the probe sees it over HTTP: each request also
 * spends `o` ms in HTTP outside the slot (part of its latency) and the load generator takes `t`
 * ms between a response and its next request (not part of any latency). The closed loop then
 * serves c / (S + o + t) until the slots are busy, K / S above. Measured on this project's 2-core
 * box: o ~ 3 ms, t ~ 2.5 ms, and the measured rate scatters by a few % from level to level while
 * the mean latency holds steady.
 */
function httpQueue(scatter: number[], rate: 'measured' | 'served'): MeasureLevel {
  const K = 12;
  const S = 50;
  const o = 3;
  const t = 2.5;
  let i = 0;
  return async (c): Promise<LevelVerdict> => {
    const saturated = (c * 1000) / (S + o + t) > (K * 1000) / S;
    const throughput = saturated ? (K * 1000) / S : (c * 1000) / (S + o + t);
    const meanMs = saturated ? (c * 1000) / throughput - t : S + o;
    const measured = throughput * scatter[i++ % scatter.length];
    const stats = { concurrency: c, meanMs, throughputRps: measured };
    return {
      concurrency: c,
      pass: true,
      marginal: false,
      throughputRps: rate === 'served' ? servedRate(stats) : measured,
      meanMs,
    };
  };
}

const SCATTERS = [
  [1, 1, 1],
  [1.03, 0.97, 1, 0.98, 1.02],
  [0.97, 1.03, 0.99, 1.02, 0.98, 1.01],
  [1.02, 1.0, 0.97, 1.03, 0.97, 1.0, 1.02],
];
const SETTINGS = { maxConcurrency: 256, stopAtKnee: true, kneeMinGain: 0.1 };

describe('servedRate: the probe compares levels without its own turnaround', () => {
  it('is concurrency / mean latency', () => {
    expect(servedRate({ concurrency: 12, meanMs: 53, throughputRps: 216 })).toBeCloseTo(226.42, 2);
    expect(servedRate({ concurrency: 4, meanMs: 0, throughputRps: 80 })).toBe(80);
  });

  it.each(SCATTERS.map((s, i) => [i, s]))(
    'a pure queue of K = 12 behind HTTP comes out 12 or 13 (scatter %i)',
    async (_i, scatter) => {
      const out = await searchCapacity(httpQueue(scatter as number[], 'served'), SETTINGS);
      expect(out.capacity).toBeGreaterThanOrEqual(12);
      expect(out.capacity).toBeLessThanOrEqual(13);
    },
  );

  it('the measured rate, turnaround included, lands above K + 1 on some of the same runs', async () => {
    const picks: number[] = [];
    for (const scatter of SCATTERS)
      picks.push((await searchCapacity(httpQueue(scatter, 'measured'), SETTINGS)).capacity!);
    expect(Math.max(...picks)).toBeGreaterThan(13);
  });
});
