import type { ChildProcess } from 'node:child_process';
import type Redis from 'ioredis';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { waitFor } from '../harness/wait-for';
import { get, killAll, spawnWorkers, type Worker } from './workers';

/*
 * The store's redis-server is stopped and started again (empty: no persistence) while two
 * worker processes serve traffic. Documented behaviour: while Redis is unreachable each worker
 * reuses only the slots it held in Redis, for at most the fallback window after its last
 * heartbeat, then answers 503 (with Retry-After) until Redis is back; so the total stays within
 * C at every instant. When Redis is back the workers put their capacity and running slots back
 * in one step, nothing is granted until the restart hold is over, and admission is global
 * again. The concurrency counter lives on a second server that stays up.
 */

const C = 4;

interface PoolStats {
  active_requests: number;
  queued: number;
  capacity: number | null;
  capacity_source: string;
  workers: number;
}

describe('Redis restart under traffic (2 worker processes)', () => {
  const children = new Set<ChildProcess>();
  let store: RedisServer;
  let counterServer: RedisServer;
  let counter: Redis;
  let workers: Worker[];
  let prefix: string;

  beforeAll(async () => {
    [store, counterServer] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    counter = counterServer.client();
    prefix = uniquePrefix('restart');
    const config = {
      redisUrl: store.url,
      counterUrl: counterServer.url,
      keyPrefix: prefix,
      capacity: C,
      leaseTtl: 2,
      queueTimeout: 20,
    };
    workers = await spawnWorkers(
      'test/fixtures/redis-worker.ts',
      2,
      { WORKER_CONFIG: JSON.stringify(config) },
      children,
      90_000,
    );
  }, 120_000);

  afterAll(async () => {
    await killAll(children);
    counter?.disconnect();
    await Promise.all([store?.stop(), counterServer?.stop()]);
  });

  async function stats(w: Worker): Promise<{ reachable: boolean; pool: PoolStats }> {
    const r = await get(`${w.url}/balancer/stats`);
    const body = r.body as { store: { reachable: boolean }; endpoints: Record<string, PoolStats> };
    return { reachable: body.store.reachable, pool: body.endpoints['/work'] };
  }

  it('answers every request while Redis is down (200 or 503), stays within C at every instant, and recovers with nothing leaked', async () => {
    // Both workers are registered as live before the outage, and each has seen the other at a
    // heartbeat since (so its share is C / 2): registration alone is not enough, a worker that
    // registered first learns of the second only at its next heartbeat.
    const before = store.client();
    await waitFor(
      async () => (await before.zcard(`${prefix}:{/work}:workers`)) === 2,
      10_000,
      '2 workers',
    );
    before.disconnect();
    await waitFor(
      async () => (await Promise.all(workers.map(stats))).every((s) => s.pool.workers === 2),
      10_000,
      'each worker sees 2 workers',
    );

    type Phase = 'before' | 'down' | 'after';
    let phase = 'before' as Phase;
    let stop = false;
    const results: Record<Phase, number[]> = { before: [], down: [], after: [] };
    const inFlight: Record<Phase, number> = { before: 0, down: 0, after: 0 };
    /** Statuses of requests sent and answered before Redis was stopped: all must be 200. */
    const healthy: number[] = [];
    let outage = false;
    const loops = Array.from({ length: 8 }, async (_, c) => {
      for (let i = 0; !stop; i++) {
        const at = phase;
        inFlight[at]++;
        const r = await get(`${workers[(i + c) % 2].url}/work?ms=20`);
        inFlight[at]--;
        results[at].push(r.status);
        if (!outage) healthy.push(r.status);
      }
    });
    /** The highest global concurrency any worker saw since the last call; then start afresh. */
    const takePeak = async (): Promise<number> => {
      const peaks = await Promise.all(workers.map((w) => get(`${w.url}/peak`)));
      await Promise.all(workers.map((w) => get(`${w.url}/peak/reset`, { method: 'POST' })));
      return Math.max(...peaks.map((r) => (r.body as { peak: number }).peak));
    };

    await waitFor(() => healthy.length >= 50, 30_000, 'traffic before');
    const peakBefore = await takePeak();
    outage = true;
    await store.stop();
    phase = 'down';
    await waitFor(
      async () => (await Promise.all(workers.map(stats))).every((s) => !s.reachable),
      15_000,
      'workers notice the outage',
    );
    const downStats = await stats(workers[0]);
    expect(downStats.pool).toMatchObject({ capacity_source: 'fallback' });
    expect(downStats.pool.capacity).toBeLessThanOrEqual(C);
    await waitFor(() => inFlight.before === 0, 10_000, 'requests from before the outage finish');
    const peakHandOver = await takePeak();
    await waitFor(() => results.down.length >= 50, 30_000, 'traffic while Redis is down');

    await store.start();
    await waitFor(
      async () => (await Promise.all(workers.map(stats))).every((s) => s.reachable),
      20_000,
      'workers reconnect',
    );
    phase = 'after';
    await waitFor(
      () => results.after.filter((s) => s === 200).length >= 50,
      30_000,
      'traffic after recovery',
    );
    stop = true;
    await Promise.all(loops);
    const peakAfterHandOver = await takePeak();

    // While Redis was up every request was served: no 503 there.
    expect(healthy.filter((s) => s !== 200)).toEqual([]);
    // Nothing lost: 200, or a documented 503 for requests that waited while Redis was down
    // (sent before it, or during it) or that came during the restart hold; then 200 again.
    for (const p of ['before', 'down', 'after'] as const)
      expect({ p, other: results[p].filter((s) => s !== 200 && s !== 503) }).toEqual({
        p,
        other: [],
      });
    expect(results.after.filter((s) => s === 200).length).toBeGreaterThan(0);
    // Within C at every instant: before, at the hand-over, while down, and after.
    expect(peakBefore).toBeLessThanOrEqual(C);
    expect(peakHandOver).toBeLessThanOrEqual(C);
    expect(peakAfterHandOver).toBeLessThanOrEqual(C);
    for (const w of workers) {
      await waitFor(
        async () => (await stats(w)).pool.active_requests === 0,
        10_000,
        'slots released',
      );
      expect(await stats(w)).toEqual({
        reachable: true,
        pool: expect.objectContaining({
          capacity: C,
          capacity_source: 'manual',
          active_requests: 0,
          queued: 0,
        }),
      });
    }
    const check = store.client();
    expect(await check.zcard(`${prefix}:{/work}:leases`)).toBe(0);
    expect(await check.zcard(`${prefix}:{/work}:queue`)).toBe(0);
    check.disconnect();
  }, 120_000);
});
