import type { ChildProcess } from 'node:child_process';
import type { WorkerConfig } from '../fixtures/redis-worker';
import { ModelServer } from '../harness/model-server';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { TcpProxy } from '../harness/tcp-proxy';
import { waitFor } from '../harness/wait-for';
import { get, killAll, spawnWorkers, type Worker } from './workers';

/*
 * Fault matrix: two worker processes share capacity C through one redis-server, each reaching
 * it through its own TCP proxy owned by the test (cut, delay, heal). Every admitted request
 * calls a model server outside the workers, which counts global in-flight: the cap must hold
 * at every instant, through the fault and after healing, and every request is answered (200,
 * or a documented 503 with Retry-After / 504), never lost.
 */

const C = 4;
const TTL = 2;
const WORK_MS = 40;
const CLIENTS = 12;

interface Tally {
  statuses: Map<number, number>;
  /** 200s per worker since the last `mark()`. */
  ok: number[];
  missingRetryAfter: number;
}

describe('fault matrix: global in-flight <= C through cuts, stalls, restarts and delays', () => {
  const children = new Set<ChildProcess>();
  const matrix: Array<{ scenario: string; peak: number; statuses: Record<string, number> }> = [];
  let redis: RedisServer;
  let model: ModelServer;
  let proxies: TcpProxy[];
  let workers: Worker[];

  beforeAll(async () => {
    redis = await RedisServer.start();
    model = await ModelServer.start();
    proxies = await Promise.all([TcpProxy.start(redis.port), TcpProxy.start(redis.port)]);
    const prefix = uniquePrefix('faults');
    workers = (
      await Promise.all(
        proxies.map((proxy) => {
          const config: WorkerConfig = {
            redisUrl: proxy.url,
            modelUrl: model.url,
            keyPrefix: prefix,
            capacity: C,
            leaseTtl: TTL,
            queueTimeout: 3,
          };
          return spawnWorkers(
            'test/fixtures/redis-worker.ts',
            1,
            { WORKER_CONFIG: JSON.stringify(config) },
            children,
            90_000,
          );
        }),
      )
    ).flat();
  }, 120_000);

  afterAll(async () => {
    for (const w of workers ?? []) w.signal('SIGCONT');
    await killAll(children);
    await Promise.all((proxies ?? []).map((p) => p.close()));
    await model?.close();
    await redis?.stop();
    if (matrix.length > 0) {
      const rows = matrix.map(
        (m) => `${m.scenario.padEnd(40)} peak ${m.peak} / C ${C}   ${JSON.stringify(m.statuses)}`,
      );
      process.stdout.write(`\nfault matrix\n${rows.join('\n')}\n`);
    }
  });

  async function reachable(w: Worker): Promise<boolean> {
    const r = await get(`${w.url}/balancer/stats`);
    return (r.body as { store?: { reachable?: boolean } } | null)?.store?.reachable === true;
  }

  /** Closed-loop clients over both workers until `stop()`. */
  function traffic(): { tally: Tally; mark(): void; stop(): Promise<void> } {
    const tally: Tally = { statuses: new Map(), ok: [0, 0], missingRetryAfter: 0 };
    let running = true;
    const loops = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; running; i++) {
        const w = (i + c) % workers.length;
        let status = 0;
        try {
          const res = await fetch(`${workers[w].url}/work?ms=${WORK_MS}`);
          await res.arrayBuffer();
          status = res.status;
          if ((status === 503 || status === 504) && !res.headers.get('retry-after'))
            tally.missingRetryAfter++;
        } catch {
          status = 0;
        }
        tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1);
        if (status === 200) tally.ok[w]++;
        if (status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
    });
    return {
      tally,
      mark: () => {
        tally.ok = [0, 0];
      },
      stop: async () => {
        running = false;
        await Promise.all(loops);
      },
    };
  }

  /**
   * Traffic before, during and after `fault`; then the cap held and every answer was a
   * documented one. `heal` undoes the fault whatever happened (a failed assertion inside
   * `fault` must not leave a link cut or a worker frozen for the next scenarios).
   */
  async function expectSafeThrough(
    name: string,
    fault: (t: Tally) => Promise<void>,
    heal: () => void | Promise<void>,
  ): Promise<void> {
    await waitFor(
      async () => (await Promise.all(workers.map(reachable))).every(Boolean),
      20_000,
      'both workers on Redis',
    );
    model.takePeak();
    const load = traffic();
    try {
      await waitFor(() => load.tally.ok.every((n) => n >= 10), 20_000, 'traffic before');
      try {
        await fault(load.tally);
      } finally {
        await heal();
      }
      await waitFor(
        async () => (await Promise.all(workers.map(reachable))).every(Boolean),
        20_000,
        'both workers back on Redis',
      );
      // Healed: both workers serve again, and the cap holds over the traffic after the fault.
      load.mark();
      await waitFor(() => load.tally.ok.every((n) => n >= 20), 20_000, 'traffic after healing');
    } finally {
      await load.stop();
    }
    const peak = model.takePeak();
    const statuses = Object.fromEntries(load.tally.statuses);
    matrix.push({ scenario: name, peak, statuses });
    expect({ scenario: name, peak: Math.min(peak, C) }).toEqual({ scenario: name, peak });
    expect(Object.keys(statuses).filter((s) => !['200', '503', '504'].includes(s))).toEqual([]);
    expect(load.tally.missingRetryAfter).toBe(0);
    expect(model.running).toBe(0);
  }

  /** Resolves once `ms` have passed since `from` (a fault that lasts a given time). */
  const lasted = (from: number, ms: number) => () => Date.now() - from >= ms;

  it('one of two workers cut off for longer than the lease TTL, then healed', async () => {
    await expectSafeThrough(
      'one worker cut > leaseTtl',
      async (t) => {
        const cutAt = Date.now();
        proxies[1].cut();
        await waitFor(async () => !(await reachable(workers[1])), 10_000, 'B notices');
        const okA = t.ok[0];
        await waitFor(lasted(cutAt, 2 * TTL * 1000), 20_000, 'the cut outlives leaseTtl');
        // A kept serving, on every slot once B's leases expired.
        expect(t.ok[0]).toBeGreaterThan(okA);
      },
      () => proxies[1].heal(),
    );
  }, 90_000);

  it('every worker cut off, then healed', async () => {
    await expectSafeThrough(
      'all workers cut > leaseTtl',
      async () => {
        const cutAt = Date.now();
        proxies.forEach((p) => p.cut());
        await waitFor(
          async () => !(await Promise.all(workers.map(reachable))).some(Boolean),
          10_000,
          'both notice',
        );
        await waitFor(lasted(cutAt, 1.5 * TTL * 1000), 20_000, 'the cut outlives leaseTtl');
      },
      () => proxies.forEach((p) => p.heal()),
    );
  }, 90_000);

  it('a worker frozen with SIGSTOP past the lease TTL, then resumed', async () => {
    await expectSafeThrough(
      'one worker SIGSTOP > leaseTtl',
      async (t) => {
        workers[1].signal('SIGSTOP');
        const stoppedAt = Date.now();
        const okA = t.ok[0];
        await waitFor(lasted(stoppedAt, 1.5 * TTL * 1000), 20_000, 'the stall outlives leaseTtl');
        expect(t.ok[0]).toBeGreaterThan(okA);
      },
      // Resumed whatever happened: a frozen worker would fail every later scenario.
      () => workers[1].signal('SIGCONT'),
    );
  }, 90_000);

  it('Redis restarted empty mid-traffic', async () => {
    await expectSafeThrough(
      'Redis restarted empty',
      async () => {
        await redis.stop();
        await waitFor(
          async () => !(await Promise.all(workers.map(reachable))).some(Boolean),
          10_000,
          'both notice',
        );
      },
      async () => {
        if (!redis.running) await redis.start();
      },
    );
  }, 90_000);

  it('a 300 ms delay on one worker link', async () => {
    await expectSafeThrough(
      '300 ms delay on one link',
      async (t) => {
        proxies[1].delay(300);
        const delayedAt = Date.now();
        const okB = t.ok[1];
        await waitFor(lasted(delayedAt, 2 * TTL * 1000), 20_000, 'the delay outlives leaseTtl');
        await waitFor(() => t.ok[1] > okB + 5, 20_000, 'B serves through the slow link');
      },
      () => proxies[1].heal(),
    );
  }, 90_000);
});
