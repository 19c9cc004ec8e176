import type { ChildProcess } from 'node:child_process';
import { Cluster } from 'ioredis';
import type { Lease } from '../../src/storage/capacity-store.interface';
import { RedisCapacityStore } from '../../src/storage/redis-capacity.store';
import type { WorkerConfig } from '../fixtures/redis-worker';
import { ModelServer } from '../harness/model-server';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { RedisCluster } from '../harness/redis-cluster';
import { waitFor } from '../harness/wait-for';
import { get, killAll, spawnWorkers } from './workers';

/*
 * Redis Cluster mode against a real one-node cluster (it holds every slot, so cross-slot
 * scripts are refused exactly as on a larger cluster): `storage.redis.cluster` and an existing
 * Cluster client as `storage.client`.
 */
describe('RedisCapacityStore on Redis Cluster', () => {
  let server: RedisServer;
  const stores: RedisCapacityStore[] = [];

  beforeAll(async () => {
    server = await RedisServer.start({ cluster: true });
  });

  afterAll(async () => {
    for (const s of stores.splice(0)) await s.close();
    await server?.stop();
  });

  function nodes() {
    return [{ host: '127.0.0.1', port: server.port }];
  }

  it('shares capacity, queue and probe lock between two stores; a user Cluster client is never closed', async () => {
    const prefix = uniquePrefix('cluster');
    const a = new RedisCapacityStore(
      { type: 'redis', redis: { cluster: nodes() }, keyPrefix: prefix, leaseTtl: 5 },
      { logger: false },
    );
    const client = new Cluster(nodes());
    const b = new RedisCapacityStore(
      { type: 'redis', client, keyPrefix: prefix, leaseTtl: 5 },
      { logger: false },
    );
    stores.push(a, b);
    try {
      await a.init();
      await b.init();
      expect(a.isReachable() && b.isReachable()).toBe(true);
      await a.setCapacity('/c', 1, 'manual');
      const first = await a.acquire('/c', { timeoutMs: 10_000, maxQueue: 10 });
      expect(first.ok).toBe(true);
      const waiter = b.acquire('/c', { timeoutMs: 10_000, maxQueue: 10 });
      await waitFor(async () => (await a.snapshot('/c')).queued === 1, 10_000, 'b queued');
      await (first as { lease: Lease }).lease.release();
      const second = await waiter;
      expect(second.ok).toBe(true);
      await (second as { lease: Lease }).lease.release();
      expect(await b.snapshot('/c')).toMatchObject({ capacity: 1, active: 0, queued: 0 });
      expect((await b.snapshot('/c')).counters.admitted).toBe(2);

      const lock = await a.tryProbeLock('/c', 10_000);
      expect(lock).not.toBeNull();
      expect(await b.tryProbeLock('/c', 10_000)).toBeNull();
      await lock!.release();
      await b.saveProbeResult('/c', {
        maxConcurrency: 3,
        measuredAt: 'x',
        durationMs: 1,
        report: null,
      });
      expect(await a.getProbeResult('/c')).toMatchObject({ maxConcurrency: 3 });

      await b.close();
      expect(client.status).toBe('ready');
    } finally {
      client.disconnect();
    }
  });
});

/*
 * A real Redis Cluster of three masters (`redis-cli --cluster create`): pools whose keys live
 * on different nodes, stores and worker processes seeded with different nodes, and grants that
 * cross the cluster bus (the releasing script publishes on the pool's node, the waiter's process
 * listens on another).
 */
describe('Redis Cluster of three masters', () => {
  const children = new Set<ChildProcess>();
  const stores: RedisCapacityStore[] = [];
  let cluster: RedisCluster;
  let model: ModelServer;

  beforeAll(async () => {
    [cluster, model] = await Promise.all([RedisCluster.start(3), ModelServer.start()]);
  }, 60_000);

  afterAll(async () => {
    for (const s of stores.splice(0)) await s.close();
    await killAll(children);
    await model?.close();
    await cluster?.stop();
  });

  /** Seeds starting at node `i`: each store or worker starts from a different node. */
  const seeds = (i: number) => [...cluster.seeds.slice(i), ...cluster.seeds.slice(0, i)];

  /** One pool name per master. */
  async function poolsOnEveryNode(prefix: string): Promise<string[]> {
    const byPort = new Map<number, string>();
    for (let i = 0; byPort.size < 3 && i < 200; i++) {
      const pool = `/n${i}`;
      const port = await cluster.ownerPort(`${prefix}:{${pool}}:meta`);
      if (!byPort.has(port)) byPort.set(port, pool);
    }
    expect(byPort.size).toBe(3);
    return [...byPort.values()];
  }

  it('a waiter is granted by a release on another node (pub/sub across the cluster, no poll)', async () => {
    const prefix = uniquePrefix('c3');
    const make = async (i: number, pollMs: number) => {
      const store = new RedisCapacityStore(
        { type: 'redis', redis: { cluster: seeds(i) }, keyPrefix: prefix, leaseTtl: 5 },
        { logger: false, tuning: { pollMs } },
      );
      stores.push(store);
      await store.init();
      return store;
    };
    const a = await make(0, 100);
    // b never polls within the test: a grant can only reach it as a message.
    const b = await make(2, 60_000);
    for (const pool of await poolsOnEveryNode(prefix)) {
      await a.setCapacity(pool, 1, 'manual');
      const held = await a.acquire(pool, { timeoutMs: 10_000, maxQueue: 10 });
      expect(held.ok).toBe(true);
      const waiting = b.acquire(pool, { timeoutMs: 20_000, maxQueue: 10 });
      await waitFor(async () => (await a.snapshot(pool)).queued === 1, 10_000, 'b queued');
      await (held as { lease: Lease }).lease.release();
      const got = await waiting;
      expect(got.ok).toBe(true);
      await (got as { lease: Lease }).lease.release();
      expect(await a.snapshot(pool)).toMatchObject({ active: 0, queued: 0, capacity: 1 });
    }
  }, 60_000);

  it('three worker processes seeded with different nodes never exceed C together', async () => {
    const C = 4;
    const prefix = uniquePrefix('c3mp');
    const workers = (
      await Promise.all(
        [0, 1, 2].map((i) => {
          const config: WorkerConfig = {
            cluster: seeds(i),
            modelUrl: model.url,
            keyPrefix: prefix,
            capacity: C,
            leaseTtl: 2,
            queueTimeout: 20,
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
    model.takePeak();
    const total = 300;
    let next = 0;
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 12 }, async (_, c) => {
        for (;;) {
          const i = next++;
          if (i >= total) return;
          const r = await get(`${workers[(i + c) % 3].url}/work?ms=5`);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      }),
    );
    expect(Object.fromEntries(statuses)).toEqual({ 200: total });
    expect(model.takePeak()).toBe(C);
  }, 240_000);
});
