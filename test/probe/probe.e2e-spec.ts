import { ProbeService, type ProbeRunOptions } from '../../src';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';

/**
 * Accuracy against synthetic model servers with a known true capacity K and service time S.
 * The ProbeService is an HTTP client: the adapter only serves the simulated model, so these run
 * against one (Express); the startup probe inside an app runs on both (startup-probe.e2e-spec).
 * Serial timing pass (`npm run test:timing`): the readings must not share the CPU with suites.
 * Thresholds keep a wide margin for a noisy shared machine: on the knee shape a request takes
 * S (plus a few ms of HTTP) at or below K and at least 10 S above K; the latency limit sits at
 * 5 S, so a stall of up to ~4 S on this box does not move the result, and an over-K request can
 * never pass. The pure queue has no errors and no limit in reach: the throughput knee decides.
 * How the client fails (404, 422, a budget too small for any level, a target that is down, an
 * abort) reads no machine speed: test/probe/probe-errors.e2e-spec.ts, in the parallel pass.
 */
const S = 40;
const KNEE = { serviceTimeMs: S, shape: 'knee' as const, slowdown: 10 };
const LIMIT_MS = 5 * S;
const QUEUE_S = 50;
/**
 * Short levels. On the knee the latency limit decides and a level above K (>= 10 S a request)
 * fails on any sample, so windows need not span the default 10 mean latencies
 * (`levelLatencies`); the pure queue, decided by throughput, keeps the default.
 */
const FAST: ProbeRunOptions = {
  warmupMs: 150,
  levelDurationMs: 500,
  minSamples: 20,
  levelLatencies: 2,
};

describe('ProbeService against a model served by Express', () => {
  const platform = 'express';
  const probe = new ProbeService();
  let app: ModelApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it.each([1, 3, 12])('finds exactly K = %i on the sharp knee', async (k) => {
    app = await startModelApp(platform, { capacity: k, ...KNEE });
    const result = await probe.probe(
      { url: `${app.url}/predict`, method: 'POST', body: PREDICT_BODY },
      { ...FAST, latencyThresholdMs: LIMIT_MS },
    );
    expect(result.maxConcurrency).toBe(k);
    expect(result.stopReason).toBe('limit');
    // The table holds K (passing) and K + 1 (failing): the gap was tested.
    expect(result.levels.find((l) => l.concurrency === k)?.pass).toBe(true);
    expect(result.levels.filter((l) => l.concurrency === k + 1).every((l) => !l.pass)).toBe(true);
    for (const l of result.levels) {
      expect(l.p99Ms).toBeLessThanOrEqual(l.maxMs);
      expect(l.p50Ms).toBeLessThanOrEqual(l.p99Ms);
    }
  });

  it('lands within 10 % of K = 12 on the pure queue (throughput knee)', async () => {
    const k = 12;
    app = await startModelApp(platform, { capacity: k, serviceTimeMs: QUEUE_S, shape: 'queue' });
    // Longer levels than FAST: the knee compares throughputs, so a stall must average out.
    const result = await probe.probe(
      { url: `${app.url}/predict`, method: 'POST', body: PREDICT_BODY },
      { ...FAST, levelDurationMs: 1000, levelLatencies: 10 },
    );
    expect(result.stopReason).toBe('knee');
    expect(Math.abs(result.maxConcurrency - k)).toBeLessThanOrEqual(k * 0.1);
    // Every level kept its concurrency in flight (Little's law check), so the knee is real: a
    // capped client pool would sit near 12. (The client's own turnaround between a response and
    // the next request costs up to ~20 % at 32 senders on a CPU-starved 2-core box.)
    for (const l of result.levels.filter((x) => x.pass))
      expect(l.littleConcurrency).toBeGreaterThan(0.7 * l.concurrency);
    expect(app.model.peak).toBeGreaterThanOrEqual(16); // the load generator really reached its levels
  });

  it('honours the request budget: stops at it and keeps the largest level that passed', async () => {
    app = await startModelApp(platform, { capacity: 64, serviceTimeMs: 5, shape: 'queue' });
    app.model.reset();
    // Level 1 (one sender, >= 5 ms a request, 150 + 500 ms) sends at most ~135 requests, so it
    // completes within 400; the ramp to the knee at 64 needs thousands: the budget stops it.
    const budget = 400;
    const result = await probe.probe(
      { url: `${app.url}/predict`, method: 'POST', body: PREDICT_BODY },
      { ...FAST, maxRequests: budget },
    );
    expect(app.model.served + app.model.failed).toBeLessThanOrEqual(budget);
    expect(result.stopReason).toBe('budget');
    expect(result.maxConcurrency).toBeGreaterThanOrEqual(1);
    expect(result.requests).toBeLessThanOrEqual(budget);
    expect(result.warnings.join(' ')).toMatch(/budget/);
  });
});
