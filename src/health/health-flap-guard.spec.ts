import { HealthFlapGuard } from './health-flap-guard';

describe('HealthFlapGuard', () => {
  it('turns unhealthy only after the failure threshold in a row', () => {
    const guard = new HealthFlapGuard(3, 1);
    expect(guard.record(false)).toBeNull();
    expect(guard.record(false)).toBeNull();
    expect(guard.healthy).toBe(true);
    expect(guard.record(false)).toBe(false);
    expect(guard.healthy).toBe(false);
    // Further failures do not flip again.
    expect(guard.record(false)).toBeNull();
    expect(guard.consecutiveFailures).toBe(4);
  });

  it('resets the failure count on a success (failures must be consecutive)', () => {
    const guard = new HealthFlapGuard(2, 1);
    for (let i = 0; i < 10; i++) {
      expect(guard.record(false)).toBeNull();
      expect(guard.record(true)).toBeNull();
    }
    expect(guard.healthy).toBe(true);
  });

  it('recovers only after the recovery threshold in a row', () => {
    const guard = new HealthFlapGuard(1, 3);
    expect(guard.record(false)).toBe(false);
    expect(guard.record(true)).toBeNull();
    expect(guard.record(true)).toBeNull();
    expect(guard.record(false)).toBeNull();
    expect(guard.record(true)).toBeNull();
    expect(guard.record(true)).toBeNull();
    expect(guard.consecutiveSuccesses).toBe(2);
    expect(guard.record(true)).toBe(true);
    expect(guard.healthy).toBe(true);
  });

  it('with thresholds of 1 follows every check', () => {
    const guard = new HealthFlapGuard(1, 1);
    expect([false, true, false, true].map((ok) => guard.record(ok))).toEqual([
      false,
      true,
      false,
      true,
    ]);
  });
});
