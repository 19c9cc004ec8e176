import { InFlightStarts, p99Broken, steady } from './early-verdict';

describe('p99Broken', () => {
  it('is broken once the bad responses exceed 1.5 % of the responses the window will measure', () => {
    // 200 responses in a quarter of a 1 s window, 32 in flight: about 832 expected, limit 12.5.
    expect(p99Broken(13, 200, 250, 1000, 32)).toBe(true);
    expect(p99Broken(12, 200, 250, 1000, 32)).toBe(false);
  });

  it('early in a window it needs many more bad responses (the rest may dilute them)', () => {
    // 20 responses after 20 ms of a 1 s window: 1032 expected, so 16 bad are needed.
    expect(p99Broken(15, 20, 20, 1000, 32)).toBe(false);
    expect(p99Broken(16, 20, 20, 1000, 32)).toBe(true);
  });

  it('past the window the projection is what has been measured plus the requests in flight', () => {
    expect(p99Broken(2, 100, 2000, 1000, 10)).toBe(true);
    expect(p99Broken(1, 100, 2000, 1000, 10)).toBe(false);
  });

  it('never with no bad response or no time elapsed', () => {
    expect(p99Broken(0, 1000, 500, 1000, 1)).toBe(false);
    expect(p99Broken(5, 5, 0, 1000, 1)).toBe(false);
  });
});

describe('steady', () => {
  it('needs the standard error of the mean within 1 % of the mean', () => {
    // sd 2 ms around 20 ms: SE 2 / sqrt(n) <= 0.2 from n = 100.
    const meanSq = (mean: number, sd: number): number => mean * mean + sd * sd;
    expect(steady(20, meanSq(20, 2), 100)).toBe(true);
    expect(steady(20, meanSq(20, 2), 99)).toBe(false);
    expect(steady(20, meanSq(20, 0), 1)).toBe(false);
  });
});

describe('InFlightStarts', () => {
  it('counts the measured requests in flight and those past the limit', () => {
    const f = new InFlightStarts();
    f.add(0); // warm-up (before the window)
    const a = f.add(100);
    f.add(150);
    f.add(190);
    expect(f.measured(100, 240, 100)).toEqual({ running: 3, overdue: 1 });
    expect(f.measured(100, 280, 100)).toEqual({ running: 3, overdue: 2 });
    f.delete(a);
    expect(f.measured(100, 280, 100)).toEqual({ running: 2, overdue: 1 });
    expect(f.measured(100, 280, Infinity)).toEqual({ running: 2, overdue: 0 });
  });
});
