import { LevelPlanner, warmupFor, WARMUP_FLOOR_MS } from './level-plan';
import { defaultProbeSettings } from './probe.service';
import type { LevelStats } from './probe.types';

function level(concurrency: number, p50Ms: number, meanMs = p50Ms): LevelStats {
  return {
    concurrency,
    phase: 'step',
    requests: 20,
    warmupRequests: 0,
    errors: 0,
    timeouts: 0,
    errorRate: 0,
    statuses: { 200: 20 },
    p50Ms,
    p99Ms: p50Ms,
    maxMs: p50Ms,
    meanMs,
    throughputRps: (concurrency * 1000) / meanMs,
    littleConcurrency: concurrency,
    littleOk: true,
    windowMs: 1000,
    pass: true,
    early: false,
  };
}

describe('LevelPlanner', () => {
  it('relative rule: no latency limit at level 1, then factor x unloaded p50 above the floor', () => {
    const plans = new LevelPlanner(defaultProbeSettings(), 3000);
    const first = plans.plan(1, []);
    expect(first.limitMs).toBe(Infinity);
    // Level 1 of the relative rule: the request timeout is the whole time budget.
    expect(first.timeoutMs).toBe(120_000);
    const levels = [level(1, 3000)];
    expect(plans.plan(2, levels)).toMatchObject({ limitMs: 12_000, timeoutMs: 60_000 });
    expect(plans.thresholds(levels)).toEqual({
      errorThreshold: 0.05,
      latencyThresholdMs: 12_000,
      latencyRule: 'relative',
      unloadedP50Ms: 3000,
    });
  });

  it('relative rule: a millisecond route gets the floor', () => {
    const plans = new LevelPlanner(defaultProbeSettings(), 20);
    expect(plans.plan(2, [level(1, 20)]).limitMs).toBe(1000);
    const tight = new LevelPlanner(defaultProbeSettings({ latencyFloorMs: 50 }), 20);
    expect(tight.plan(2, [level(1, 20)]).limitMs).toBe(80);
  });

  it('absolute rule: latencyThresholdMs for every level, 5 x it as the request timeout', () => {
    const plans = new LevelPlanner(defaultProbeSettings({ latencyThresholdMs: 200 }), 20);
    expect(plans.plan(1, [])).toMatchObject({ limitMs: 200, timeoutMs: 1000 });
    expect(plans.plan(4, [level(1, 150)]).limitMs).toBe(200);
    expect(plans.thresholds([level(1, 150)]).latencyRule).toBe('absolute');
  });

  it('paces a level by latency from the nearest level measured at or below it', () => {
    const plans = new LevelPlanner(defaultProbeSettings(), 700);
    // Level 1 right after a 700 ms preflight: slow, and warm (no warm-up).
    expect(plans.plan(1, [])).toMatchObject({ slow: true, warm: true });
    const fast = new LevelPlanner(defaultProbeSettings(), 20);
    expect(fast.plan(1, []).slow).toBe(false);
    // Level 8 between a passing 4 (30 ms) and a failing 16 (900 ms): the 4 decides.
    const levels = [level(1, 20), level(4, 30), level(16, 900)];
    expect(fast.plan(8, levels)).toMatchObject({ slow: false, warm: false });
    // A repeat of 16 is expected to be as slow as 16 was.
    expect(fast.plan(16, levels).slow).toBe(true);
    expect(
      new LevelPlanner(defaultProbeSettings({ slowLatencyMs: 1000 }), 700).plan(1, []).slow,
    ).toBe(false);
  });

  it('warm-up: 3 expected latencies (the level below, or the preflight), between 50 ms and warmupMs', () => {
    const plans = new LevelPlanner(defaultProbeSettings({ latencyThresholdMs: 100 }), 40);
    // Level 1: the preflight's 40 ms.
    expect(plans.plan(1, []).warmupMs).toBe(120);
    // Level 8 after level 4 measured a mean of 22 ms.
    expect(plans.plan(8, [level(1, 20), level(4, 21, 22)]).warmupMs).toBe(66);
    // Short latencies: the floor; long ones: warmupMs.
    expect(plans.plan(2, [level(1, 2)]).warmupMs).toBe(WARMUP_FLOOR_MS);
    expect(plans.plan(2, [level(1, 150)]).warmupMs).toBe(300);
  });
});

describe('warmupFor', () => {
  it('warmupLatencies 0 keeps the fixed warmupMs (the rule before 0.3)', () => {
    expect(warmupFor({ warmupMs: 300, warmupLatencies: 0 }, 20)).toBe(300);
    expect(warmupFor({ warmupMs: 300, warmupLatencies: 5 }, 20)).toBe(100);
    // warmupMs is the ceiling, also under the floor.
    expect(warmupFor({ warmupMs: 10, warmupLatencies: 3 }, 20)).toBe(10);
  });
});
