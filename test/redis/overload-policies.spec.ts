import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import type {
  AcquireOptions,
  AcquireResult,
  Lease,
} from '../../src/storage/capacity-store.interface';
import { queueTargetIntervalMs } from '../../src/storage/queue-order';
import { RedisCapacityStore, type RedisStoreTuning } from '../../src/storage/redis-capacity.store';
import { poolKeys } from '../../src/storage/redis/keys';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { TcpProxy } from '../harness/tcp-proxy';
import { waitFor } from '../harness/wait-for';

/*
 * The overload policies across workers (several stores in one process stand in for workers,
 * each with its own connections and process id): one global order, queueTargetMs state shared
 * through Redis, and per-tenant tables that stay exact when a worker is cut off. The single-store
 * rules are in test/contract/overload-policies.contract.ts.
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

describe('Redis store: overload policies across workers', () => {
  let server: RedisServer;
  let raw: Redis;
  const stores: RedisCapacityStore[] = [];
  const proxies: TcpProxy[] = [];

  async function makeStore(prefix: string, url = server.url): Promise<RedisCapacityStore> {
    const store = new RedisCapacityStore(
      { type: 'redis', url, keyPrefix: prefix, leaseTtl: 2 },
      { logger: false, tuning: FAST },
    );
    stores.push(store);
    await store.init();
    return store;
  }

  beforeAll(async () => {
    server = await RedisServer.start();
    raw = server.client();
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const p of proxies.splice(0)) await p.close();
  });

  afterAll(async () => {
    raw?.disconnect();
    await server?.stop();
  });

  /** Waiters of several workers on one pool of capacity 1, served one release at a time. */
  function line(pool: string) {
    const pending = new Map<string, Promise<readonly [string, Lease]>>();
    let count = 0;
    return {
      async join(
        store: RedisCapacityStore,
        label: string,
        extra: Partial<AcquireOptions> = {},
      ): Promise<void> {
        const p = store
          .acquire(pool, { timeoutMs: LONG, maxQueue: 100, ...extra })
          .then((r) => [label, lease(r)] as const);
        p.catch(() => undefined);
        pending.set(label, p);
        const n = ++count;
        await waitFor(
          async () => (await store.snapshot(pool)).queued === n,
          10_000,
          `${label} queued`,
        );
      },
      async next(current: Lease): Promise<[string, Lease]> {
        await current.release();
        const [label, granted] = await Promise.race(pending.values());
        pending.delete(label);
        count--;
        return [label, granted];
      },
    };
  }

  it('one order across workers: tenants round-robin and priorities hold whichever worker queued or released', async () => {
    const prefix = uniquePrefix('order');
    const a = await makeStore(prefix);
    const b = await makeStore(prefix);
    await a.setCapacity('/o', 1, 'manual');
    let current = lease(await b.acquire('/o', { timeoutMs: LONG, maxQueue: 100 }));
    const l = line('/o');
    for (let i = 0; i < 4; i++) await l.join(a, `h${i}`, { tenant: 'heavy' });
    await l.join(b, 'l0', { tenant: 'light' });
    await l.join(b, 'l1', { tenant: 'light' });
    // Round 1 - (-1) x priorityAging 1 = key 2: served with the second round.
    await l.join(a, 'low', { tenant: 'low', priority: -1, priorityAging: 1 });
    // Round 1 - 1 x 1000: before everyone.
    await l.join(b, 'vip', { tenant: 'vip', priority: 1 });
    const order: string[] = [];
    for (let i = 0; i < 8; i++) {
      const [label, next] = await l.next(current);
      order.push(label);
      current = next;
    }
    await current.release();
    // Equal keys of different workers are served in member (process id) order, so each round
    // is compared as a set; the rounds come in order, each tenant's waiters in arrival order.
    const rounds = [order.slice(0, 1), order.slice(1, 3), order.slice(3, 6), order.slice(6)];
    expect(rounds.map((r) => [...r].sort())).toEqual([
      ['vip'],
      ['h0', 'l0'],
      ['h1', 'l1', 'low'],
      ['h2', 'h3'],
    ]);
    expect(order.slice(6)).toEqual(['h2', 'h3']);
    const s = await a.snapshot('/o');
    expect(s).toMatchObject({ active: 0, queued: 0 });
    expect(s.tenants?.admitted).toEqual([
      { tenant: 'heavy', count: 4 },
      { tenant: 'light', count: 2 },
      { tenant: 'low', count: 1 },
      { tenant: 'vip', count: 1 },
    ]);
  });

  it("queueTargetMs is shared: one worker's grants make the queue standing, another worker's request is shed", async () => {
    const prefix = uniquePrefix('target');
    const a = await makeStore(prefix);
    const b = await makeStore(prefix);
    const target = 20; // interval 100 ms
    await a.setCapacity('/t', 1, 'manual');
    const holder = lease(await b.acquire('/t', { timeoutMs: LONG, maxQueue: 100 }));
    const l = line('/t');
    for (let i = 0; i < 4; i++) await l.join(a, `w${i}`, { queueTargetMs: target });
    // Every wait is above the target from here on; a loaded machine only lengthens them.
    const joined = performance.now();
    await waitFor(() => performance.now() >= joined + 2 * target, 5000, 'the target to pass');
    // b releases: w0 is granted after waiting > target, then w1 40 ms later (the drain gap).
    let [, current] = await l.next(holder);
    const aboveFrom = performance.now();
    await waitFor(() => performance.now() >= aboveFrom + 40, 5000, 'a drain gap');
    [, current] = await l.next(current);
    const standing = aboveFrom + queueTargetIntervalMs(target) + 20;
    await waitFor(() => performance.now() >= standing, 5000, 'the interval to pass');
    // b never passed a target: what it sees came from a's acquires, through Redis.
    const overload = (await b.snapshot('/t')).overload;
    expect(overload?.shedding).toBe(true);
    expect(overload?.drainMs).toBeGreaterThanOrEqual(40 - 1);
    const shed = await b.acquire('/t', { timeoutMs: LONG, maxQueue: 100, queueTargetMs: target });
    expect(shed).toMatchObject({ ok: false, reason: 'shed' });
    expect((await a.snapshot('/t')).counters).toMatchObject({ rejected: 1, shed: 1 });
    for (let i = 0; i < 2; i++) [, current] = await l.next(current);
    await current.release();
    expect((await b.snapshot('/t')).overload?.shedding).toBe(false);
  });

  it('a waiter whose worker is cut off leaves no trace in the tenant tables; it queues again once, on recovery', async () => {
    const prefix = uniquePrefix('cut');
    const link = await TcpProxy.start(server.port);
    proxies.push(link);
    const a = await makeStore(prefix, link.url);
    const b = await makeStore(prefix);
    await b.setCapacity('/c', 1, 'manual');
    const holder = lease(await b.acquire('/c', { timeoutMs: LONG, maxQueue: 100 }));
    const waiting = a.acquire('/c', { timeoutMs: LONG, maxQueue: 100, tenant: 'cut' });
    await waitFor(async () => (await b.snapshot('/c')).queued === 1, 10_000, 'a queued');
    const keys = poolKeys(prefix, '/c');
    const [first] = await raw.hkeys(keys.waiters);

    // Cut off, the waiter waits in a's local queue (within the fallback window), not answered.
    link.cut();
    await waitFor(() => a.mode === 'fallback', 10_000, 'a in fallback');
    link.heal();
    await waitFor(() => a.mode === 'online', 10_000, 'a back online');
    // The entry of the cut-off wait is gone (dropped by a's recovery, or reaped): the waiter
    // queued again under a new id, and its tenant counts it once.
    await waitFor(
      async () => (await raw.hkeys(keys.waiters)).some((id) => id !== first),
      10_000,
      'the waiter queued again',
    );
    expect(await raw.hkeys(keys.waiters)).toHaveLength(1);
    expect((await b.snapshot('/c')).tenants?.queued).toEqual([{ tenant: 'cut', count: 1 }]);
    await holder.release();
    await lease(await waiting).release();
    const s = await b.snapshot('/c');
    expect(s).toMatchObject({ active: 0, queued: 0 });
    expect(s.tenants).toEqual({ queued: [], admitted: [{ tenant: 'cut', count: 1 }] });
    expect(await raw.exists(keys.queue, keys.waiters, keys.tenantQueued, keys.tenantRounds)).toBe(
      0,
    );
  }, 30_000);

  it('while cut off, the local queue keeps maxQueuePerTenant; its refusals reach the global counters on recovery', async () => {
    const prefix = uniquePrefix('local');
    const link = await TcpProxy.start(server.port);
    proxies.push(link);
    const a = await makeStore(prefix, link.url);
    const b = await makeStore(prefix);
    await a.setCapacity('/f', 1, 'manual');
    const held = lease(await a.acquire('/f', { timeoutMs: LONG, maxQueue: 10 }));
    link.cut();
    await waitFor(() => a.mode === 'fallback', 10_000, 'a in fallback');
    const limited = { timeoutMs: LONG, maxQueue: 10, tenant: 't', maxQueuePerTenant: 1 };
    const first = a.acquire('/f', limited);
    await waitFor(async () => (await a.snapshot('/f')).queued === 1, 5000, 'queued locally');
    expect(await a.acquire('/f', limited)).toMatchObject({
      ok: false,
      reason: 'tenant_queue_full',
    });
    // The slot a holds in Redis serves its local waiter.
    await held.release();
    await lease(await first).release();
    link.heal();
    await waitFor(() => a.mode === 'online', 10_000, 'a back online');
    expect((await b.snapshot('/f')).counters).toMatchObject({ admitted: 2, rejected: 1, shed: 1 });
  }, 30_000);
});
