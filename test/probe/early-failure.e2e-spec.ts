import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { prepareRequest, RequestBudget, runLevel } from '../../src/probe/load-generator';
import { defaultProbeSettings } from '../../src/probe/probe.service';

/**
 * A fast level whose p99 is already over the limit ends before its window does: a real
 * listening server answers every fifth request in 300 ms and the others in 20 ms, against a
 * 100 ms limit. Most responses are within the limit (the "most failed" rule never fires), but
 * 20 % over it breaks any p99. Timing suite: it compares the window with `levelDurationMs`.
 */
describe('runLevel: a level whose p99 is already broken ends early', () => {
  let server: Server;
  let url: string;
  let n = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      const delay = ++n % 5 === 0 ? 300 : 20;
      setTimeout(() => res.end('ok'), delay);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mixed`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('fails on latency before levelDurationMs, with every measured request measured', async () => {
    const s = defaultProbeSettings({ latencyThresholdMs: 100 });
    const run = await runLevel(
      prepareRequest({ url }),
      4,
      'step',
      s,
      { limitMs: 100, timeoutMs: 10_000, slow: false, warmupMs: 100 },
      new RequestBudget(10_000),
      new AbortController().signal,
    );
    // `early` is set only by the early failure rules; the median is within the limit.
    expect(run.stats).toMatchObject({ pass: false, failure: 'latency', early: true });
    expect(run.stats.p50Ms).toBeLessThan(100);
    expect(run.stats.p99Ms).toBeGreaterThan(100);
    // The rule before ran such a level for its whole window (levelDurationMs, 1 s).
    expect(run.stats.windowMs).toBeLessThan(s.levelDurationMs);
    expect(run.stats.requests).toBeGreaterThanOrEqual(s.minSamples);
  });
});
