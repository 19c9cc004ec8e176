import { CapacityController, type AdaptiveObservation } from './capacity-controller';

const S = 40;

/**
 * A backend with true capacity `k`: up to k in flight every request takes S ms; each request
 * beyond k makes every request 50 % slower (thrashing). Closed-loop demand always exceeds the
 * cap, so the pool is saturated and throughput follows Little's law. `noise` scales throughput
 * by a seeded factor in [1 - noise, 1 + noise].
 */
function thrashing(k: number, slow = 1): (c: number) => { throughputRps: number } {
  return (c) => {
    const latency = S * slow * (1 + 0.5 * Math.max(0, c - k));
    return { throughputRps: (c * 1000) / latency };
  };
}

/** A pure queue inside the backend: k slots of `S x slow` ms. */
function queue(k: number, slow = 1): (c: number) => { throughputRps: number } {
  return (c) => ({ throughputRps: (Math.min(c, k) * 1000) / (S * slow) });
}

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

/** Run `intervals` intervals; `backendAt(i)` gives the backend of interval i. Returns the caps. */
function simulate(
  ctl: CapacityController,
  start: number,
  intervals: number,
  backendAt: (i: number) => (c: number) => { throughputRps: number },
  noise = 0,
): number[] {
  const random = rng(42);
  const caps: number[] = [];
  let cap = start;
  for (let i = 0; i < intervals; i++) {
    caps.push(cap);
    const x = backendAt(i)(cap).throughputRps * (1 + noise * (2 * random() - 1));
    const o: AdaptiveObservation = {
      capacity: cap,
      throughputRps: x,
      latencyMs: (cap * 1000) / x,
      completions: Math.round(x),
      saturated: true,
    };
    const d = ctl.observe(o);
    if (d) cap = d.capacity;
  }
  return caps;
}

/** Number of capacity changes in a series. */
const changes = (caps: number[]): number => caps.slice(1).filter((c, i) => c !== caps[i]).length;

describe('CapacityController', () => {
  it('holds a backend at its true capacity: only rare, backed-off trials above it', () => {
    const ctl = new CapacityController({ min: 1, max: 16 });
    const caps = simulate(ctl, 8, 100, () => thrashing(8));
    expect(Math.min(...caps)).toBe(8);
    // Trials last two intervals each and back off 3, 6, 9, 9 … intervals apart (the wait is
    // bounded so that a recovered backend is noticed in time, see the climb-back test).
    expect(caps.filter((c) => c === 8).length).toBeGreaterThanOrEqual(82);
    expect(changes(caps.slice(50))).toBeLessThanOrEqual(8);
  });

  it('follows a backend whose capacity drops from 8 to 4 within 3 intervals, and holds it', () => {
    const ctl = new CapacityController({ min: 1, max: 16 });
    const caps = simulate(ctl, 8, 80, (i) => thrashing(i < 20 ? 8 : 4));
    // Interval 20 is the first slow one; two slow intervals confirm; the step lands at once.
    const after = caps.slice(20);
    const reached = after.findIndex((c) => c <= 4);
    expect(reached).toBeGreaterThanOrEqual(0);
    expect(reached).toBeLessThanOrEqual(3);
    expect(Math.min(...after)).toBeGreaterThanOrEqual(4);
    // Held at 4 with two-interval trials at 5, at most every 11 intervals.
    const settled = caps.slice(30);
    expect(settled.filter((c) => c === 4).length).toBeGreaterThanOrEqual(settled.length - 10);
  });

  it('climbs back to 8 within 40 intervals when the capacity recovers', () => {
    const ctl = new CapacityController({ min: 1, max: 16 });
    const caps = simulate(ctl, 8, 140, (i) => thrashing(i >= 20 && i < 60 ? 4 : 8));
    const back = caps.slice(60).findIndex((c) => c >= 8);
    expect(back).toBeGreaterThanOrEqual(0);
    expect(back).toBeLessThanOrEqual(40);
    // Never wild: every step is at most half the capacity down or a quarter (>= 1) up.
    for (let i = 1; i < caps.length; i++) {
      expect(caps[i]).toBeGreaterThanOrEqual(Math.ceil(caps[i - 1] / 2));
      expect(caps[i]).toBeLessThanOrEqual(
        caps[i - 1] + Math.max(1, Math.round(caps[i - 1] / 4)) + 2,
      );
    }
    // Settled at 8 again, with the occasional one-step trial above it.
    const last = caps.slice(-20);
    expect(Math.min(...last)).toBe(8);
    expect(last.filter((c) => c === 8).length).toBeGreaterThanOrEqual(16);
  });

  it('climbs back from 4 to at least 7 within 11 intervals of a recovery, wherever the backoff stood', () => {
    // The recovery lands at every phase of the backed-off tries at 5 (they come every 11 intervals).
    for (let recovery = 60; recovery < 76; recovery++) {
      const ctl = new CapacityController({ min: 2, max: 16 });
      const caps = simulate(ctl, 8, recovery + 40, (i) =>
        thrashing(i >= 20 && i < recovery ? 4 : 8),
      );
      expect(caps[recovery - 1]).toBeLessThanOrEqual(5);
      const back = caps.slice(recovery).findIndex((c) => c >= 7);
      expect(back).toBeGreaterThanOrEqual(0);
      expect(back).toBeLessThanOrEqual(11);
      // It settles at the true capacity, not above or one below it.
      expect(caps.slice(recovery + 30).filter((c) => c === 8).length).toBeGreaterThanOrEqual(8);
    }
  });

  it('a re-probe brings a backed-off climb forward', () => {
    const slow = new CapacityController({ min: 1, max: 16 });
    const quick = new CapacityController({ min: 1, max: 16 });
    const backend = (i: number) => thrashing(i >= 5 && i < 44 ? 4 : 8);
    // Interval 43 is early in a wait between two backed-off tries.
    const a = simulate(slow, 8, 44, backend);
    const b = simulate(quick, 8, 44, backend);
    expect(a.slice(40)).toEqual([4, 4, 4, 4]);
    expect(b.slice(40)).toEqual([4, 4, 4, 4]);
    quick.reprobe();
    const resumeA = simulate(slow, 4, 10, () => thrashing(8));
    const resumeB = simulate(quick, 4, 10, () => thrashing(8));
    expect(resumeB.findIndex((c) => c > 4)).toBeLessThan(
      Math.max(
        0,
        resumeA.findIndex((c) => c > 4),
      ) || 10,
    );
  });

  it('noisy but steady (throughput +-10 %): never steps down, no oscillation', () => {
    const ctl = new CapacityController({ min: 1, max: 16 });
    const caps = simulate(ctl, 8, 100, () => thrashing(8), 0.1);
    expect(Math.min(...caps)).toBe(8);
    // Every change is a two-interval trial above 8 (a transition, then the verdict), undone
    // at once; trials back off (at most 9 intervals apart).
    expect(changes(caps)).toBeLessThanOrEqual(18);
    const afterTrials = caps.flatMap((c, i) =>
      c > 8 && caps[i - 1] === 8 ? [caps[i + 2] ?? 8] : [],
    );
    expect(afterTrials).toEqual(afterTrials.map(() => 8));
    expect(changes(caps.slice(50))).toBeLessThanOrEqual(8);
  });

  it('a backend that is uniformly slower (all levels) gets one step down, undone, then holds', () => {
    const ctl = new CapacityController({ min: 1, max: 8 });
    const caps = simulate(ctl, 8, 60, (i) => queue(8, i < 10 ? 1 : 2));
    // Fewer in flight would only serve less: the cap returns to 8 and stays there.
    expect(caps.slice(10).filter((c) => c < 8).length).toBeLessThanOrEqual(2);
    expect(caps[caps.length - 1]).toBe(8);
    expect(ctl.referenceLatencyMs).toBeGreaterThanOrEqual(2 * S * 0.99);
  });

  it('respects [min, max] and ignores thin or unsaturated intervals', () => {
    const ctl = new CapacityController({ min: 6, max: 9 });
    const caps = simulate(ctl, 8, 60, (i) => thrashing(i < 10 ? 8 : 2));
    expect(Math.min(...caps)).toBe(6);
    const up = simulate(new CapacityController({ min: 1, max: 9 }), 8, 60, () => queue(64));
    expect(Math.max(...up)).toBe(9);

    const idle = new CapacityController({ min: 1, max: 16 }, S);
    const thin = {
      capacity: 8,
      throughputRps: 10,
      latencyMs: 10 * S,
      completions: 5,
      saturated: true,
    };
    const light = { ...thin, completions: 500, saturated: false };
    for (let i = 0; i < 10; i++) {
      expect(idle.observe(thin)).toBeNull();
      expect(idle.observe(light)).toBeNull();
    }
  });
});
