import type { PoolSnapshot } from '../storage/capacity-store.interface';
import { PoolSampler } from './pool-sampler';

function snap(over: Partial<PoolSnapshot>): PoolSnapshot {
  return {
    pool: 'p',
    capacity: 100,
    source: 'adaptive',
    active: 0,
    queued: 0,
    counters: { admitted: 0, rejected: 0, timedOut: 0, shed: 0 },
    workers: 1,
    ...over,
  };
}

describe('PoolSampler', () => {
  it('reads a pool that is not costed in requests', () => {
    const s = new PoolSampler();
    s.add(snap({ active: 4, counters: { admitted: 0, rejected: 0, timedOut: 0, shed: 0 } }), 0);
    s.add(snap({ active: 4, counters: { admitted: 10, rejected: 0, timedOut: 0, shed: 0 } }), 500);
    const o = s.take(
      snap({ counters: { admitted: 20, rejected: 0, timedOut: 0, shed: 0 } }),
      1000,
      100,
    );
    expect(o).toMatchObject({ throughputRps: 20, latencyMs: 200, completions: 20 });
  });

  it("reads a costed pool in units: rate in units/s, Little's law on units, completions in requests", () => {
    const s = new PoolSampler();
    const counters = (admitted: number) => ({ admitted, rejected: 0, timedOut: 0, shed: 0 });
    s.add(
      snap({ active: 2, units: { active: 80, queued: 0, admitted: 0 }, counters: counters(0) }),
      0,
    );
    s.add(
      snap({ active: 2, units: { active: 80, queued: 0, admitted: 200 }, counters: counters(5) }),
      500,
    );
    const o = s.take(
      snap({ active: 1, units: { active: 100, queued: 0, admitted: 400 }, counters: counters(10) }),
      1000,
      100,
    );
    // 400 units in 1 s; 80 units in flight on average: each unit held 200 ms.
    expect(o).toMatchObject({ throughputRps: 400, latencyMs: 200, completions: 10 });
  });

  it('counts a costed pool as saturated when its units in flight reach the capacity', () => {
    const s = new PoolSampler();
    const full = snap({ active: 1, capacity: 100, units: { active: 100, queued: 0, admitted: 0 } });
    s.add(full, 0);
    s.add(full, 500);
    expect(s.take(full, 1000, 100)?.saturated).toBe(true);
  });
});
