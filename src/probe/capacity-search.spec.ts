import {
  searchCapacity,
  stepLevels,
  type LevelVerdict,
  type MeasureLevel,
} from './capacity-search';
import type { LevelPhase } from './probe.types';

/** A fake endpoint that passes up to `k` in flight; records every level tried. */
function thresholdEndpoint(k: number) {
  const tried: Array<[number, LevelPhase]> = [];
  const measure: MeasureLevel = async (c, phase) => {
    tried.push([c, phase]);
    return {
      concurrency: c,
      pass: c <= k,
      marginal: false,
      throughputRps: Math.min(c, k) * 100,
      meanMs: 10,
    };
  };
  return { measure, tried };
}

const NO_KNEE = { stopAtKnee: false, kneeMinGain: 0.1 };

describe('stepLevels', () => {
  it('doubles up to the maximum and ends on it', () => {
    expect(stepLevels(1)).toEqual([1]);
    expect(stepLevels(8)).toEqual([1, 2, 4, 8]);
    expect(stepLevels(100)).toEqual([1, 2, 4, 8, 16, 32, 64, 100]);
  });
});

describe('searchCapacity: step-up and binary search', () => {
  it('finds every true capacity from 1 to 130 exactly', async () => {
    for (let k = 1; k <= 130; k++) {
      const { measure } = thresholdEndpoint(k);
      const out = await searchCapacity(measure, { maxConcurrency: 256, ...NO_KNEE });
      expect({ k, capacity: out.capacity }).toEqual({ k, capacity: k });
    }
  });

  it('tests the gap of 2: true capacity 3 comes out 3, after trying 3', async () => {
    const { measure, tried } = thresholdEndpoint(3);
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...NO_KNEE });
    expect(out).toMatchObject({ capacity: 3, stopReason: 'limit' });
    expect(tried.map(([c]) => c)).toEqual([1, 2, 4, 3]);
  });

  it('narrows to adjacent levels: K and K + 1 are both measured', async () => {
    const { measure, tried } = thresholdEndpoint(45);
    await searchCapacity(measure, { maxConcurrency: 256, ...NO_KNEE });
    const levels = tried.map(([c]) => c);
    expect(levels).toContain(45);
    expect(levels).toContain(46);
    expect(levels).not.toContain(128); // never above a failing level
  });

  it('measures a level that reads under the share once more: one stall in the search does not cut K', async () => {
    // K = 12 on a sharp knee; the first reading of 12 (inside the limits) is halved by a stall.
    const { measure: base, tried } = thresholdEndpoint(12);
    let stalled = false;
    const measure: MeasureLevel = async (c, phase) => {
      const v = (await base(c, phase))!;
      if (c === 12 && !stalled) {
        stalled = true;
        return { ...v, throughputRps: v.throughputRps / 2 };
      }
      return v;
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...NO_KNEE });
    expect(out).toMatchObject({ capacity: 12, stopReason: 'limit' });
    expect(tried).toContainEqual([12, 'repeat']);
  });

  it('still moves below a level that reads under the share twice (a thrashing backend)', async () => {
    // Passes the limits up to 20, but above 8 throughput falls: 9 .. 20 serve less than 8. The
    // limit search between 16 and 32 finds 20 inside the limits but under the share, twice.
    const tried: number[] = [];
    const measure: MeasureLevel = async (c) => {
      tried.push(c);
      return {
        concurrency: c,
        pass: c <= 20,
        marginal: false,
        throughputRps: c <= 8 ? c * 100 : 800 - (c - 8) * 60,
        meanMs: 10,
      };
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...NO_KNEE });
    expect(out.capacity).toBe(8);
    expect(tried.filter((c) => c === 20)).toHaveLength(2);
    expect(tried).not.toContain(21); // never above a level that read under the share twice
  });

  it('stops at maxConcurrency when everything passes', async () => {
    const { measure, tried } = thresholdEndpoint(1000);
    const out = await searchCapacity(measure, { maxConcurrency: 20, ...NO_KNEE });
    expect(out).toMatchObject({ capacity: 20, stopReason: 'max_concurrency' });
    expect(tried.map(([c]) => c)).toEqual([1, 2, 4, 8, 16, 20]);
  });

  it('reports a level-1 failure instead of a capacity', async () => {
    const { measure } = thresholdEndpoint(0);
    const out = await searchCapacity(measure, { maxConcurrency: 64, ...NO_KNEE });
    expect(out.capacity).toBeNull();
    expect(out.levelOneFailed?.concurrency).toBe(1);
  });

  it('measures a marginal failure once more and keeps the level when the repeat passes', async () => {
    const tried: Array<[number, LevelPhase]> = [];
    let stalled = false;
    const measure: MeasureLevel = async (c, phase) => {
      tried.push([c, phase]);
      // One stall at level 4; the true capacity is 6.
      if (c === 4 && !stalled) {
        stalled = true;
        return { concurrency: c, pass: false, marginal: true, throughputRps: 1, meanMs: 10 };
      }
      return { concurrency: c, pass: c <= 6, marginal: false, throughputRps: c, meanMs: 10 };
    };
    const out = await searchCapacity(measure, { maxConcurrency: 64, ...NO_KNEE });
    expect(out.capacity).toBe(6);
    expect(tried).toContainEqual([4, 'repeat']);
  });

  it('gives level 1 two repeats before declaring it failed', async () => {
    const stalls = (n: number): MeasureLevel => {
      let left = n;
      return async (c) => {
        if (c === 1 && left-- > 0)
          return { concurrency: c, pass: false, marginal: true, throughputRps: 1, meanMs: 10 };
        return { concurrency: c, pass: c <= 5, marginal: false, throughputRps: c, meanMs: 10 };
      };
    };
    expect((await searchCapacity(stalls(2), { maxConcurrency: 64, ...NO_KNEE })).capacity).toBe(5);
    const out = await searchCapacity(stalls(3), { maxConcurrency: 64, ...NO_KNEE });
    expect(out.capacity).toBeNull();
    expect(out.levelOneFailed?.concurrency).toBe(1);
  });

  it('stops with the largest passing level when the budget runs out', async () => {
    let calls = 0;
    const measure: MeasureLevel = async (c) => {
      calls++;
      if (calls > 5) return null; // budget gone during the binary search
      return { concurrency: c, pass: c <= 20, marginal: false, throughputRps: c, meanMs: 10 };
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...NO_KNEE });
    // 1, 2, 4, 8, 16 passed; 32 never completed.
    expect(out).toMatchObject({ capacity: 16, stopReason: 'budget' });
  });

  it('has no capacity when the budget runs out before any level passed', async () => {
    const out = await searchCapacity(async () => null, { maxConcurrency: 256, ...NO_KNEE });
    expect(out).toMatchObject({ capacity: null, stopReason: 'budget' });
  });
});

/** A pure queue: K slots of S ms, plus `overheadMs` outside the server per request. */
function queueEndpoint(k: number, serviceMs: number, overheadMs = 0): MeasureLevel {
  return async (c): Promise<LevelVerdict> => {
    const knee = (k * (serviceMs + overheadMs)) / serviceMs;
    const throughput = c <= knee ? (c * 1000) / (serviceMs + overheadMs) : (k * 1000) / serviceMs;
    return {
      concurrency: c,
      pass: true,
      marginal: false,
      throughputRps: throughput,
      meanMs: (c * 1000) / throughput,
    };
  };
}

describe('searchCapacity: the knee', () => {
  it.each([1, 2, 3, 5, 12, 20, 32, 50, 100])(
    'lands within 10 %% of K = %i on a pure queue',
    async (k) => {
      for (const overhead of [0, 0.5, 1, 2]) {
        const out = await searchCapacity(queueEndpoint(k, 20, overhead), {
          maxConcurrency: 512,
          stopAtKnee: true,
          kneeMinGain: 0.1,
        });
        expect(out.stopReason).toBe('knee');
        expect(Math.abs(out.capacity! - k)).toBeLessThanOrEqual(Math.max(0, Math.floor(k * 0.1)));
      }
    },
  );

  it('confirms a low reading before stopping: one stall does not end the step-up', async () => {
    const base = queueEndpoint(40, 20);
    let stalled = false;
    const measure: MeasureLevel = async (c, phase) => {
      const v = (await base(c, phase))!;
      if (c === 8 && !stalled) {
        stalled = true;
        return { ...v, throughputRps: v.throughputRps / 2 };
      }
      return v;
    };
    const out = await searchCapacity(measure, {
      maxConcurrency: 512,
      stopAtKnee: true,
      kneeMinGain: 0.1,
    });
    expect(out.capacity).toBeGreaterThanOrEqual(36);
    expect(out.capacity).toBeLessThanOrEqual(44);
  });

  it('is off with stopAtKnee false: a queue steps up to maxConcurrency, the share rule still picks K', async () => {
    const tried: number[] = [];
    const base = queueEndpoint(4, 20);
    const out = await searchCapacity(
      async (c, phase) => {
        tried.push(c);
        return base(c, phase);
      },
      { maxConcurrency: 64, ...NO_KNEE },
    );
    expect(out).toMatchObject({ capacity: 4, stopReason: 'max_concurrency' });
    expect(tried.slice(0, 7)).toEqual([1, 2, 4, 8, 16, 32, 64]);
  });

  it('a slow (settled) queue stops at the knee without measuring any level twice', async () => {
    const base = queueEndpoint(4, 10_000);
    const tried: Array<[number, LevelPhase]> = [];
    const out = await searchCapacity(
      async (c, phase) => {
        tried.push([c, phase]);
        return { ...(await base(c, phase))!, settled: true };
      },
      { maxConcurrency: 256, stopAtKnee: true, kneeMinGain: 0.1 },
    );
    expect(out).toMatchObject({ capacity: 4, stopReason: 'knee' });
    // Each level once: a repeat of a slow level costs two of its latencies.
    expect(tried).toEqual([
      [1, 'step'],
      [2, 'step'],
      [4, 'step'],
      [8, 'step'],
    ]);
  });

  it('never reports more than the level where the knee showed', async () => {
    const out = await searchCapacity(queueEndpoint(3, 20, 2), {
      maxConcurrency: 512,
      stopAtKnee: true,
      kneeMinGain: 0.1,
    });
    expect(out.capacity).toBeLessThanOrEqual(8);
    expect(out.knee?.estimate).toBeGreaterThan(0);
  });
});

describe('searchCapacity: a collapse above K within the latency budget', () => {
  it('keeps the last level that scaled linearly instead of a noisy knee estimate', async () => {
    // K = 8 slots of 50 ms; above K the endpoint thrashes (throughput falls) but stays inside
    // a generous latency limit, so only the knee logic can stop the step-up. A 6 % low
    // throughput reading at the peak used to round the estimate down to 7.
    const measure: MeasureLevel = async (c) => {
      const throughput = c <= 8 ? (c * 1000) / 50 : 40;
      return {
        concurrency: c,
        pass: true,
        marginal: false,
        throughputRps: c === 8 ? throughput * 0.94 : throughput,
        meanMs: c <= 8 ? 50 : (c * 1000) / 40,
      };
    };
    const out = await searchCapacity(measure, {
      maxConcurrency: 64,
      stopAtKnee: true,
      kneeMinGain: 0.1,
    });
    expect(out).toMatchObject({ capacity: 8, stopReason: 'knee' });
    expect(out.knee!.estimate * 0.95).toBeLessThan(7.5);
  });

  it('does not lift a queue to the next level when a low reading made it look linear', async () => {
    // K = 12 slots of 50 ms plus 5 ms outside the server. Level 8 reads 20 % low (a stall), so
    // level 16 seems to double it; but its mean latency rose a third above the base: it queued.
    const base = queueEndpoint(12, 50, 5);
    const measure: MeasureLevel = async (c, phase) => {
      const v = (await base(c, phase))!;
      return c === 8 ? { ...v, throughputRps: v.throughputRps * 0.8 } : v;
    };
    const out = await searchCapacity(measure, {
      maxConcurrency: 64,
      stopAtKnee: true,
      kneeMinGain: 0.1,
    });
    expect(out.stopReason).toBe('knee');
    expect(Math.abs(out.capacity! - 12)).toBeLessThanOrEqual(1);
  });
});

/** Latency as a function of concurrency; throughput by Little's law (closed loop). */
function curveEndpoint(latencyMs: (c: number) => number, limitMs: number): MeasureLevel {
  return async (c): Promise<LevelVerdict> => {
    const meanMs = latencyMs(c);
    return {
      concurrency: c,
      pass: meanMs <= limitMs,
      marginal: false,
      throughputRps: (c * 1000) / meanMs,
      meanMs,
    };
  };
}

const KNEE_ON = { stopAtKnee: true, kneeMinGain: 0.1 };

describe('searchCapacity: the throughput-share rule (issue 15 shapes)', () => {
  it('a CPU-bound route whose latency does not parallelise (120 -> 182 -> 188 req/s): not 1', async () => {
    // One image alone uses both cores (8.3 ms); two at once take 11 ms each; beyond, queueing.
    const rps: Record<number, number> = { 1: 120, 2: 182, 4: 188 };
    const measure = curveEndpoint((c) => (c * 1000) / (rps[c] ?? 189), 2000);
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...KNEE_ON });
    expect(out.capacity).toBe(2);
    expect(out.choice).toMatchObject({ peakThroughputRps: 188, throughputRps: 182 });
    expect(out.choice!.throughputShare).toBeGreaterThanOrEqual(0.95);
    // The Little's-law knee alone (peak x lowest latency) would have said 1.
    expect(Math.round(out.knee!.estimate * 0.95)).toBe(1);
  });

  it.each([true, false])(
    'a backend that thrashes above 8 within a 120 ms limit comes out 8, not 11 (stopAtKnee %s)',
    async (stopAtKnee) => {
      // 40 ms up to 8 in flight; each extra one makes every request 50 % slower.
      const tried: number[] = [];
      const base = curveEndpoint((c) => 40 * (1 + 0.5 * Math.max(0, c - 8)), 120);
      const out = await searchCapacity(
        async (c, phase) => {
          tried.push(c);
          return base(c, phase);
        },
        { maxConcurrency: 256, stopAtKnee, kneeMinGain: 0.1 },
      );
      expect(out.capacity).toBe(8);
      expect(out.choice!.throughputShare).toBe(1);
      // The binary search looked at 9 .. 12 (within the latency limit) and kept 8 on throughput.
      expect(tried.some((c) => c > 8 && c <= 12)).toBe(true);
    },
  );

  /**
   * Continuous batching (vLLM, TGI): each decoding step advances every running request by one
   * token and takes 12 ms + 0.128 ms per request in the batch; a request needs 16 tokens.
   * Throughput keeps rising with concurrency while latency rises slowly (715 ms at 256).
   */
  const batching = (c: number): number => 16 * (12 + 0.128 * c);

  it('continuous batching: steps up to the top and keeps >= 95 % of the peak', async () => {
    const out = await searchCapacity(curveEndpoint(batching, 2000), {
      maxConcurrency: 256,
      ...KNEE_ON,
    });
    expect(out.stopReason).toBe('max_concurrency');
    expect(out.capacity).toBeGreaterThan(128);
    expect(out.capacity).toBeLessThan(256);
    expect(out.choice!.throughputShare).toBeGreaterThanOrEqual(0.95);
    expect(out.choice!.peakConcurrency).toBe(256);
  });

  it('continuous batching: one flat reading (184 then 188 req/s) does not stop the step-up', async () => {
    const base = curveEndpoint(batching, 2000);
    let flat = false;
    const measure: MeasureLevel = async (c, phase) => {
      const v = (await base(c, phase))!;
      if (c === 64 && !flat) {
        flat = true; // a short level saw too few waves of completions
        const prev = (await base(32, phase))!;
        return { ...v, throughputRps: prev.throughputRps * 1.02 };
      }
      return v;
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...KNEE_ON });
    expect(out.stopReason).toBe('max_concurrency');
    expect(out.capacity).toBeGreaterThan(128);
  });

  it('a lower throughputShare picks a smaller level on the same curve', async () => {
    const at95 = await searchCapacity(curveEndpoint(batching, 2000), {
      maxConcurrency: 256,
      ...KNEE_ON,
    });
    const at80 = await searchCapacity(curveEndpoint(batching, 2000), {
      maxConcurrency: 256,
      ...KNEE_ON,
      throughputShare: 0.8,
    });
    expect(at80.capacity!).toBeLessThan(at95.capacity!);
    expect(at80.choice!.throughputShare).toBeGreaterThanOrEqual(0.8);
    expect(at80.choice!.throughputShare).toBeLessThan(0.95);
  });
});

describe('searchCapacity: noise at the top', () => {
  it('a sharp knee whose level K reads 8 % low once still comes out K (latency stayed flat)', async () => {
    // K = 12 at 40 ms; above K every request is 10 x slower (fails the 200 ms limit).
    const tried: Array<[number, LevelPhase]> = [];
    let stalled = false;
    const base = curveEndpoint((c) => (c <= 12 ? 40 : 400), 200);
    const measure: MeasureLevel = async (c, phase) => {
      tried.push([c, phase]);
      const v = (await base(c, phase))!;
      if (c === 12 && !stalled) {
        stalled = true;
        return { ...v, throughputRps: v.throughputRps * 0.92 };
      }
      return v;
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...KNEE_ON });
    expect(out).toMatchObject({ capacity: 12, stopReason: 'limit' });
    // No search below K: the latency from 8 to 12 did not rise, so the segment scales.
    expect(tried.filter(([c]) => c > 8 && c < 12)).toEqual([]);
  });

  it('a sharp knee whose throughput readings scatter by 15 % still comes out K', async () => {
    const base = curveEndpoint((c) => (c <= 12 ? 40 : 400), 200);
    const scatter = [1.15, 0.85, 1.1, 0.9, 1.15, 0.85, 1.0];
    let i = 0;
    const measure: MeasureLevel = async (c, phase) => {
      const v = (await base(c, phase))!;
      return { ...v, throughputRps: v.throughputRps * scatter[i++ % scatter.length] };
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...KNEE_ON });
    expect(out).toMatchObject({ capacity: 12, stopReason: 'limit' });
  });

  it('a sharp knee whose level K read 12 % slower once: K measured again, no search below it', async () => {
    // K = 32 at 20 ms; above K 8 x slower (fails the 100 ms limit). The first reading of 32 has
    // a mean of 22.4 ms (a stall), more than kneeMinGain / 2 over level 16's.
    const tried: Array<[number, LevelPhase]> = [];
    let stalled = false;
    const base = curveEndpoint((c) => (c <= 32 ? 20 : 160), 100);
    const measure: MeasureLevel = async (c, phase) => {
      tried.push([c, phase]);
      const v = (await base(c, phase))!;
      if (c === 32 && !stalled) {
        stalled = true;
        return { ...v, meanMs: 22.4, throughputRps: (32 * 1000) / 22.4 };
      }
      return v;
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...KNEE_ON });
    expect(out).toMatchObject({ capacity: 32, stopReason: 'limit' });
    expect(tried).toContainEqual([32, 'repeat']);
    expect(tried.filter(([c]) => c > 16 && c < 32)).toEqual([]);
  });

  it('a latency that really rises 12 % from 16 to 32: measured again, then searched below', async () => {
    const tried: number[] = [];
    const base = curveEndpoint(
      (c) => (c <= 16 ? 20 : c <= 32 ? 20 * (1 + (0.12 * (c - 16)) / 16) : 160),
      100,
    );
    const measure: MeasureLevel = async (c, phase) => {
      tried.push(c);
      return base(c, phase);
    };
    const out = await searchCapacity(measure, { maxConcurrency: 256, ...KNEE_ON });
    // 32 measured twice, then the share search between 16 and 32.
    expect(tried.filter((c) => c === 32).length).toBe(2);
    expect(tried.some((c) => c > 16 && c < 32)).toBe(true);
    expect(out.capacity).toBeGreaterThan(16);
    expect(out.capacity).toBeLessThanOrEqual(32);
  });
});
