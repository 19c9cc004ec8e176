import { DRAIN_EWMA_WEIGHT, queueTargetIntervalMs } from '../queue-order';
import { OverloadTracker } from './overload-tracker';

// Times are synthetic milliseconds: the tracker is a pure function of the times it is given.
describe('OverloadTracker', () => {
  const T = 20;
  const I = queueTargetIntervalMs(T); // 100

  it('sheds only once every grant over a whole interval waited at least the target', () => {
    const o = new OverloadTracker(T);
    o.granted(1000, T + 5); // above from 1000
    o.granted(1050, T);
    expect(o.shedding(1000 + I - 1)).toBe(false);
    // One grant below the target before the interval is over ends the spell (a burst).
    o.granted(1000 + I - 1, T - 1);
    expect(o.shedding(1000 + I)).toBe(false);
    o.granted(1120 + I, 50 + T);
    expect(o.shedding(1120 + 2 * I - 1)).toBe(false);
    expect(o.shedding(1120 + 2 * I)).toBe(true);
  });

  it('once standing, stays standing through short waits until the queue empties', () => {
    const o = new OverloadTracker(T);
    o.granted(0, T + 1);
    expect(o.shedding(I)).toBe(true);
    // Shedding keeps the admitted waits near the target: a short one does not end it.
    o.granted(I + 1, T - 1);
    o.granted(I + 2, 0);
    expect(o.shedding(I + 3)).toBe(true);
    o.emptied();
    expect(o.shedding(I + 4)).toBe(false);
  });

  it('an emptied queue ends the spell and the gap, but keeps the drain average', () => {
    const o = new OverloadTracker(T);
    o.granted(0, 50);
    o.granted(30, 50);
    expect(o.drainMs).toBe(30);
    o.emptied();
    expect(o.shedding(10_000)).toBe(false);
    expect(o.drainMs).toBe(30);
    // The first grant after the queue refilled starts no gap (its time since 30 is not a drain).
    o.granted(5000, 50);
    expect(o.drainMs).toBe(30);
    o.granted(5010, 50);
    expect(o.drainMs).toBeCloseTo((1 - DRAIN_EWMA_WEIGHT) * 30 + DRAIN_EWMA_WEIGHT * 10, 9);
  });

  it('drainMs is null until two grants, then the EWMA of the gaps', () => {
    const o = new OverloadTracker(T);
    expect(o.drainMs).toBeNull();
    o.granted(100, 0);
    expect(o.drainMs).toBeNull();
    o.granted(140, 0);
    expect(o.drainMs).toBe(40);
    o.granted(160, 0);
    expect(o.drainMs).toBeCloseTo((1 - DRAIN_EWMA_WEIGHT) * 40 + DRAIN_EWMA_WEIGHT * 20, 9);
    expect(o.snapshot(160)).toEqual({ shedding: false, drainMs: o.drainMs });
  });

  it('shedFromAhead: the least number ahead with (ahead + 1) x drainMs > target, only while shedding', () => {
    const o = new OverloadTracker(T);
    o.granted(0, 100);
    expect(o.shedFromAhead(I)).toBeNull(); // drain unknown
    o.granted(7, 100); // drainMs 7
    expect(o.shedFromAhead(I - 1)).toBeNull(); // not yet standing
    const from = o.shedFromAhead(I) as number;
    expect(from).toBe(2);
    expect((from + 1) * 7).toBeGreaterThan(T);
    expect(from * 7).toBeLessThanOrEqual(T);
    // A drain interval above the target sheds even with nobody ahead.
    const slow = new OverloadTracker(T);
    slow.granted(0, 100);
    slow.granted(50, 100);
    expect(slow.shedFromAhead(I)).toBe(0);
    // An exact multiple: (ahead + 1) x 10 > 20 from ahead = 2.
    const exact = new OverloadTracker(T);
    exact.granted(0, 100);
    exact.granted(10, 100);
    expect(exact.shedFromAhead(I)).toBe(2);
  });

  it('a zero drain interval sheds nothing (predicted wait 0)', () => {
    const o = new OverloadTracker(T);
    o.granted(0, 100);
    o.granted(0, 100);
    expect(o.shedding(I)).toBe(true);
    expect(o.shedFromAhead(I)).toBeNull();
  });

  it('retarget changes the target used by the next samples and the interval', () => {
    const o = new OverloadTracker(T);
    o.retarget(200); // interval 1000
    o.granted(0, 150); // below the new target
    o.granted(10, 250); // above from 10
    expect(o.shedding(10 + 999)).toBe(false);
    expect(o.shedding(10 + 1000)).toBe(true);
  });

  it('retryAfterS is the drain time of the queue, at least 1 s', () => {
    const o = new OverloadTracker(T);
    expect(o.retryAfterS(10)).toBe(1);
    o.granted(0, 0);
    o.granted(300, 0); // drainMs 300
    expect(o.retryAfterS(0)).toBe(1);
    expect(o.retryAfterS(3)).toBe(1);
    expect(o.retryAfterS(4)).toBe(2);
    expect(o.retryAfterS(10)).toBe(3);
  });
});
