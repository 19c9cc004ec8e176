import { DRAIN_WARMUP_GAPS, QueueDrainMeter } from './queue-drain-meter';

/** `n` waiters granted one by one, `gapMs` apart, from `start`; returns the time after. */
function drainBy(meter: QueueDrainMeter, n: number, gapMs: number, start = 0): number {
  for (let i = 0; i < n; i++) meter.entered();
  let t = start;
  for (let i = 0; i < n; i++) meter.left(true, (t += gapMs));
  return t;
}

describe('QueueDrainMeter', () => {
  it('predicts nothing during the warm-up, then (waiting + 1) x the drain gap', () => {
    const meter = new QueueDrainMeter();
    // DRAIN_WARMUP_GAPS grants give DRAIN_WARMUP_GAPS - 1 gaps: still warming up.
    drainBy(meter, DRAIN_WARMUP_GAPS, 100);
    meter.entered();
    expect(meter.drainMs).toBeNull();
    expect(meter.predictedWaitMs()).toBeNull();
    meter.left(false, 1e6);
    // The queue emptied: the next gap starts from the next grant, not from the last one.
    drainBy(meter, 3, 100, 5e6);
    expect(meter.drainMs).toBeCloseTo(100, 6);
    for (let i = 0; i < 4; i++) meter.entered();
    expect(meter.queued).toBe(4);
    expect(meter.predictedWaitMs()).toBeCloseTo(500, 6);
    expect(meter.retryAfterS()).toBe(1);
  });

  it('predicts nothing while none of its requests waits (a slot may be free)', () => {
    const meter = new QueueDrainMeter();
    drainBy(meter, 20, 50);
    expect(meter.drainMs).toBeCloseTo(50, 6);
    expect(meter.queued).toBe(0);
    expect(meter.predictedWaitMs()).toBeNull();
  });

  it('averages the first gaps plainly, so a burst of zero gaps does not stick', () => {
    const meter = new QueueDrainMeter();
    for (let i = 0; i < 11; i++) meter.entered();
    // Three grants at once (gaps of 0), then gaps of 200 ms.
    meter.left(true, 1000);
    meter.left(true, 1000);
    meter.left(true, 1000);
    let t = 1000;
    for (let i = 0; i < 8; i++) meter.left(true, (t += 200));
    // Ten gaps: 2 x 0 and 8 x 200 -> a mean of 160 ms (an EWMA of 1/32 from 0 would read ~45).
    expect(meter.drainMs).toBeCloseTo(160, 6);
  });

  it('gives a Retry-After of the time the waiting requests take to drain', () => {
    const meter = new QueueDrainMeter();
    drainBy(meter, 12, 400);
    for (let i = 0; i < 10; i++) meter.entered();
    expect(meter.retryAfterS()).toBe(4);
  });

  it('tracks a store acquire: waiting while pending, then granted or not, a rejection included', async () => {
    const meter = new QueueDrainMeter();
    let grant!: (r: { ok: boolean }) => void;
    const granted = meter.track(new Promise<{ ok: boolean }>((r) => (grant = r)));
    const failed = meter.track(Promise.reject(new Error('store down')));
    expect(meter.queued).toBe(2);
    await expect(failed).rejects.toThrow('store down');
    expect(meter.queued).toBe(1);
    grant({ ok: true });
    await expect(granted).resolves.toEqual({ ok: true });
    expect(meter.queued).toBe(0);
  });
});
