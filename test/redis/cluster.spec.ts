import { Cluster } from 'ioredis';
import type { Lease } from '../../src/storage/capacity-store.interface';
import { RedisCapacityStore } from '../../src/storage/redis-capacity.store';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { waitFor } from '../harness/wait-for';

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
