import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProbeLoadShortError, ProbeService, type ProbeRunOptions } from '../../src';

/*
 * A probe whose load does not reach the endpoint must not publish a number. The target here
 * behaves like an app whose other worker queues the probe's requests: it serves one request at
 * a time at full speed, and a request that arrives while another is being served is held for
 * HOLD_MS, longer than a whole level, so that sender never gets back into the level. The level
 * still passes (the held request started in the warm-up), but the server saw ~1 request in
 * flight at level 2: Little's law says so, and the probe measures again or fails.
 */

const SERVICE_MS = 30;
const HOLD_MS = 2500;
const SETTINGS: ProbeRunOptions = {
  warmupMs: 100,
  levelDurationMs: 300,
  minSamples: 5,
  maxConcurrency: 2,
  latencyThresholdMs: 1000,
};

interface HoldingServer {
  url: string;
  /** Requests held so far. */
  held(): number;
  close(): Promise<void>;
}

/** Holds overlapping requests, at most `holds` of them (then serves everything normally). */
async function holdingServer(holds: number): Promise<HoldingServer> {
  let serving = 0;
  let held = 0;
  const server: Server = createServer((_req, res) => {
    const hold = serving > 0 && held < holds;
    if (hold) held++;
    else serving++;
    setTimeout(
      () => {
        if (!hold) serving--;
        res.end('ok');
      },
      hold ? HOLD_MS : SERVICE_MS,
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    held: () => held,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("ProbeService: a level whose load fell short (Little's law)", () => {
  const probe = new ProbeService();
  let server: HoldingServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('is measured again, and the probe fails with a clear error when it stays short', async () => {
    server = await holdingServer(Infinity);
    const err = await probe.probe({ url: server.url }, SETTINGS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProbeLoadShortError);
    const e = err as ProbeLoadShortError;
    expect(e.reason).toBe('load_short');
    expect(e.message).toMatch(/at concurrency 2 the server saw only ~[\d.]+ requests in flight/);
    expect(e.message).toMatch(/in 3 tries; .* no capacity is published/);
    // Level 1 once, level 2 three times: passing, but short of its load each time.
    const twos = e.levels.filter((l) => l.concurrency === 2);
    expect(twos).toHaveLength(3);
    for (const l of twos) {
      expect(l.pass).toBe(true);
      expect(l.littleOk).toBe(false);
      expect(l.littleConcurrency).toBeLessThan(1.2); // one sender of two
    }
    expect(server.held()).toBeGreaterThanOrEqual(3);
  });

  it('counts the level when a repeat reaches its load', async () => {
    server = await holdingServer(1);
    const result = await probe.probe({ url: server.url }, SETTINGS);
    expect(result.maxConcurrency).toBe(2);
    const twos = result.levels.filter((l) => l.concurrency === 2);
    expect(twos.map((l) => [l.phase, l.littleOk])).toEqual([
      ['step', false],
      ['repeat', true],
    ]);
    expect(server.held()).toBe(1);
  });
});
