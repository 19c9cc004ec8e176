import type Redis from 'ioredis';
import type { AcquireResult, Lease } from '../../src/storage/capacity-store.interface';
import { RedisCapacityStore, type RedisStoreTuning } from '../../src/storage/redis-capacity.store';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { TcpProxy } from '../harness/tcp-proxy';
import { waitFor } from '../harness/wait-for';

/*
 * Cost units while a worker is cut off from Redis (see docs/cost-and-deadlines.md, "With
 * Redis"): it reuses only the leases it holds, and a costed request only a lease holding at
 * least its units; corrections are not made meanwhile; after the link heals, Redis holds exactly
 * the units somebody runs.
 */

const LONG = 30_000;
const FAST: Partial<RedisStoreTuning> = {
  heartbeatMs: 200,
  pollMs: 50,
  recoverMs: 100,
  commandTimeoutMs: 500,
  fallbackWindowMs: 1000,
  claimMs: 300,
};

function lease(r: AcquireResult): Lease {
  if (!r.ok) throw new Error(`expected a slot, got ${r.reason}`);
  return r.lease;
}

describe('Redis store: cost units while cut off', () => {
  let server: RedisServer;
  let raw: Redis;
  let proxy: TcpProxy;
  let store: RedisCapacityStore;

  beforeAll(async () => {
    server = await RedisServer.start();
    raw = server.client();
  });
  afterAll(async () => {
    await store?.close();
    await proxy?.close();
    raw?.disconnect();
    await server?.stop();
  });

  it('reuses only a held lease with enough units, makes no correction, and heals exact', async () => {
    const prefix = uniquePrefix('cost-cut');
    proxy = await TcpProxy.start(server.port);
    store = new RedisCapacityStore(
      { type: 'redis', url: proxy.url, keyPrefix: prefix, leaseTtl: 2, restartHold: 0 },
      { logger: false, tuning: FAST },
    );
    await store.init();
    await store.setCapacity('/p', 10, 'manual');
    const take = (cost: number, timeoutMs = LONG) =>
      store.acquire('/p', { timeoutMs, maxQueue: 10, cost });
    const six = lease(await take(6));
    const two = lease(await take(2));

    proxy.cut();
    await waitFor(() => store.mode === 'fallback', 10_000, 'fallback');
    await six.release();
    // A request of 5 reuses the 6-unit lease (its units stay what Redis holds: 6).
    const five = lease(await take(5));
    expect(five.id).toBe(six.id);
    expect(five.units).toBe(6);
    // A correction is not made while Redis cannot record it.
    await five.resize!(3);
    expect(five.units).toBe(6);
    // A request of 8 finds no held lease that large: it waits, and the window closes it.
    expect(await take(8)).toMatchObject({ ok: false, reason: 'closed' });

    proxy.heal();
    await waitFor(() => store.mode === 'online', 10_000, 'online again');
    expect((await store.snapshot('/p')).units).toMatchObject({ active: 8, queued: 0 });
    await five.release();
    await two.release();
    expect((await store.snapshot('/p')).units).toMatchObject({ active: 0, queued: 0 });
    expect(await raw.hlen(`${prefix}:{/p}:costs`)).toBe(0);
  }, 30_000);
});
