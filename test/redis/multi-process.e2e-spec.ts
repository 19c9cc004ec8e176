import type { ChildProcess } from 'node:child_process';
import type Redis from 'ioredis';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { waitFor } from '../harness/wait-for';
import { get, killAll, spawnWorkers, type Worker } from './workers';

/*
 * Three worker processes (separate Node processes, each its own Nest app and port) share one
 * redis-server and one pool of capacity C. The route counts its own global concurrency in
 * Redis, so "never more than C" is measured across processes, not assumed.
 */

const C = 4;
const LEASE_TTL = 2;

describe('Redis store across worker processes', () => {
  const children = new Set<ChildProcess>();
  let server: RedisServer;
  let raw: Redis;
  let workers: Worker[];
  let prefix: string;

  beforeAll(async () => {
    server = await RedisServer.start();
    raw = server.client();
    prefix = uniquePrefix('mp');
    const config = {
      redisUrl: server.url,
      counterUrl: server.url,
      keyPrefix: prefix,
      capacity: C,
      leaseTtl: LEASE_TTL,
      queueTimeout: 20,
    };
    workers = await spawnWorkers(
      'test/fixtures/redis-worker.ts',
      3,
      { WORKER_CONFIG: JSON.stringify(config) },
      children,
      90_000,
    );
  }, 120_000);

  afterAll(async () => {
    await killAll(children);
    raw?.disconnect();
    await server?.stop();
  });

  async function resetPeaks(): Promise<void> {
    await Promise.all(workers.map((w) => get(`${w.url}/peak/reset`, { method: 'POST' })));
  }

  async function peak(ws: Worker[]): Promise<number> {
    const all = await Promise.all(ws.map((w) => get(`${w.url}/peak`)));
    return Math.max(...all.map((r) => (r.body as { peak: number }).peak));
  }

  async function stats(
    w: Worker,
  ): Promise<{ active_requests: number; queued: number; capacity: number | null }> {
    const r = await get(`${w.url}/balancer/stats`);
    return (
      r.body as {
        endpoints: Record<
          string,
          { active_requests: number; queued: number; capacity: number | null }
        >;
      }
    ).endpoints['/work'];
  }

  it(`${C} global slots across 3 workers: thousands of requests never exceed ${C} at once`, async () => {
    await resetPeaks();
    const total = 2000;
    const clients = 24;
    let next = 0;
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (;;) {
          const i = next++;
          if (i >= total) return;
          const w = workers[(i + c) % workers.length];
          const r = await get(`${w.url}/work?ms=2`);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      }),
    );
    expect(Object.fromEntries(statuses)).toEqual({ 200: total });
    const seen = await peak(workers);
    expect(seen).toBeLessThanOrEqual(C);
    // The cap is used in full, not split into per-worker quotas.
    expect(seen).toBe(C);
    for (const w of workers)
      expect(await stats(w)).toMatchObject({ active_requests: 0, queued: 0, capacity: C });
  }, 120_000);

  it('a waiter in one worker is admitted when another worker frees a slot (no 504)', async () => {
    await resetPeaks();
    const [a, b, c] = workers;
    // b and c hold every slot for a while; a's requests can only run on slots they free.
    const holders = [b, b, c, c].map((w) => get(`${w.url}/work?ms=1500`));
    await waitFor(async () => (await stats(a)).active_requests === C, 10_000, 'all slots held');
    const started = Date.now();
    const waiting = Array.from({ length: 3 }, () => get(`${a.url}/work?ms=10`));
    await waitFor(async () => (await stats(a)).queued === 3, 10_000, 'a has 3 queued');
    const results = await Promise.all(waiting);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    // Admitted right after the release (~1.5 s), far from the 20 s queue timeout.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await Promise.all(holders)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(await peak(workers)).toBeLessThanOrEqual(C);
  }, 60_000);

  it(`a worker killed with SIGKILL while holding every slot gives them back within leaseTtl (${LEASE_TTL} s)`, async () => {
    const [victim, ...survivors] = workers;
    const hung = Array.from({ length: C }, () => get(`${victim.url}/work?ms=60000`));
    await waitFor(
      async () => (await stats(survivors[0])).active_requests === C,
      10_000,
      'victim holds all',
    );
    await victim.kill('SIGKILL');
    const killedAt = Date.now();
    await Promise.all(hung); // connections reset
    // The victim's handlers never decremented the concurrency counter.
    await raw.set(`${prefix}:test:running`, 0);
    await resetPeaks();

    const requests = Array.from({ length: C }, (_, i) =>
      get(`${survivors[i % 2].url}/work?ms=1500`),
    );
    // All C slots are in use by the survivors at once.
    await waitFor(
      async () => Number(await raw.get(`${prefix}:test:running`)) === C,
      15_000,
      'C running again',
    );
    const recovered = Date.now() - killedAt;
    expect((await Promise.all(requests)).map((r) => r.status)).toEqual(Array(C).fill(200));
    // leaseTtl, plus a poll interval and generous slack for a loaded machine.
    expect(recovered).toBeLessThan(LEASE_TTL * 1000 + 3000);
    expect(await peak(survivors)).toBe(C);
    await waitFor(
      async () => (await stats(survivors[0])).active_requests === 0,
      10_000,
      'all released',
    );
    expect(await raw.zcard(`${prefix}:{/work}:leases`)).toBe(0);
  }, 60_000);
});
