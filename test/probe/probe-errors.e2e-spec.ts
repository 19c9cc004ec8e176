import { createServer } from 'node:net';
import {
  ProbeBudgetError,
  ProbeRejectedError,
  ProbeService,
  ProbeUnreachableError,
  type ProbeRunOptions,
} from '../../src';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';

/**
 * How the ProbeService client fails: a clear error for a path that answers 404, a body refused
 * with 422, a request budget too small for any level, a target that is down, an abort through
 * its signal. None of these reads machine speed (the accuracy of what a probe finds is
 * test/probe/probe.e2e-spec.ts, in the timing pass), so they run in the parallel pass. The
 * ProbeService is an HTTP client: the adapter only serves the simulated model, so one (Express).
 */
const S = 40;
/** The tuning of the accuracy suite's knee runs (test/probe/probe.e2e-spec.ts). */
const FAST: ProbeRunOptions = {
  warmupMs: 150,
  levelDurationMs: 500,
  minSamples: 20,
  levelLatencies: 2,
};

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('ProbeService errors against a model served by Express', () => {
  const platform = 'express';
  const probe = new ProbeService();
  let app: ModelApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('rejects with a clear error on a path that answers 404', async () => {
    app = await startModelApp(platform, { capacity: 4, serviceTimeMs: S });
    const err = await probe
      .probe({ url: `${app.url}/nope`, method: 'POST', body: PREDICT_BODY }, FAST)
      .catch((e) => e);
    expect(err).toBeInstanceOf(ProbeRejectedError);
    expect(err).toMatchObject({ reason: 'rejected', status: 404 });
    expect(err.message).toMatch(/answered 404/);
  });

  it('rejects with a clear error when every request is refused with 422 (bad body)', async () => {
    app = await startModelApp(platform, { capacity: 4, serviceTimeMs: S });
    const err = await probe
      .probe({ url: `${app.url}/predict`, method: 'POST', body: { wrong: 1 } }, FAST)
      .catch((e) => e);
    expect(err).toBeInstanceOf(ProbeRejectedError);
    expect(err.status).toBe(422);
    expect(app.model.served).toBe(0);
  });

  it('fails with ProbeBudgetError when the budget runs out before any level passed', async () => {
    app = await startModelApp(platform, { capacity: 64, serviceTimeMs: 5, shape: 'queue' });
    app.model.reset();
    // Fewer than level 1's minSamples (20): no level can complete, however fast the machine.
    const budget = 10;
    const err = await probe
      .probe(
        { url: `${app.url}/predict`, method: 'POST', body: PREDICT_BODY },
        { ...FAST, maxRequests: budget },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProbeBudgetError);
    expect(app.model.served + app.model.failed).toBeLessThanOrEqual(budget);
  });
});

describe('ProbeService against a target that is down', () => {
  it('rejects with ProbeUnreachableError and sends nothing more', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await new ProbeService()
      .probe({ url: `http://127.0.0.1:${port}/predict` }, FAST)
      .catch((e) => e);
    expect(err).toBeInstanceOf(ProbeUnreachableError);
    expect(err.reason).toBe('unreachable');
    expect(err.message).toMatch(/ECONNREFUSED/);
    // Catches a hang or a retry loop, not a speed: an answer takes milliseconds.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('aborts promptly through its AbortSignal', async () => {
    const app = await startModelApp('express', { capacity: 64, serviceTimeMs: S, shape: 'queue' });
    try {
      const ac = new AbortController();
      const p = new ProbeService().probe(
        { url: `${app.url}/predict`, method: 'POST', body: PREDICT_BODY },
        { ...FAST, signal: ac.signal, onLevel: (l) => l.concurrency >= 2 && ac.abort() },
      );
      await expect(p).rejects.toMatchObject({ reason: 'aborted' });
    } finally {
      await app.close();
    }
  });
});
