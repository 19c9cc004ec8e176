import { Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import type { AcquireResult, Lease } from '../../src/storage/capacity-store.interface';
import { RedisCapacityStore, type RedisStoreTuning } from '../../src/storage/redis-capacity.store';
import { freePort, RedisServer, uniquePrefix } from '../harness/redis';
import { TcpProxy } from '../harness/tcp-proxy';
import { waitFor } from '../harness/wait-for';

/*
 * The Redis store when some workers lose Redis (several stores in one process stand in for
 * workers, each behind its own TCP proxy the test can cut, delay and heal), and the review
 * points of issue 14, each confirmed or refuted by a test.
 */

const LONG = 30_000;
const TTL = 2;
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

async function redisNow(raw: Redis): Promise<number> {
  const [s, us] = await raw.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

describe('Redis store: degraded mode (cut links, restarts)', () => {
  let server: RedisServer;
  let raw: Redis;
  const stores: RedisCapacityStore[] = [];
  const proxies: TcpProxy[] = [];

  async function makeStore(
    prefix: string,
    opts: { url?: string; tuning?: Partial<RedisStoreTuning>; logger?: boolean } = {},
  ): Promise<RedisCapacityStore> {
    const store = new RedisCapacityStore(
      { type: 'redis', url: opts.url ?? server.url, keyPrefix: prefix, leaseTtl: TTL },
      { logger: opts.logger ?? false, tuning: { ...FAST, ...opts.tuning } },
    );
    stores.push(store);
    await store.init();
    return store;
  }

  async function proxied(target: RedisServer = server): Promise<TcpProxy> {
    const proxy = await TcpProxy.start(target.port);
    proxies.push(proxy);
    return proxy;
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

  it('a cut-off worker reuses only the slots it holds, stops after its window, and nobody gets them meanwhile', async () => {
    const prefix = uniquePrefix('cut');
    const link = await proxied();
    const a = await makeStore(prefix, { url: link.url });
    const b = await makeStore(prefix);
    for (const s of [a, b]) await s.setCapacity('/p', 4, 'manual');
    const a1 = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    const a2 = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    const b1 = lease(await b.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));

    link.cut();
    await waitFor(() => a.mode === 'fallback', 10_000, 'a in fallback');
    // a reuses the slot it held (the same lease, still recorded in Redis), but gets no more.
    await a1.release();
    const a3 = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    expect(a3.id).toBe(a1.id);
    const a4 = a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 });
    // b sees 3 leases of 4: one more, then it waits for a's leases, which outlive a's window.
    const b2 = lease(await b.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    let b3Settled = false;
    const b3 = b.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }).then((r) => {
      b3Settled = true;
      return r;
    });
    const closed = await a4;
    expect(closed).toMatchObject({ ok: false, reason: 'closed' });
    expect(a.mode).toBe('expired');
    expect(b3Settled).toBe(false);
    expect(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 })).toMatchObject({
      ok: false,
      reason: 'closed',
    });
    expect(await a.snapshot('/p')).toMatchObject({ source: 'fallback', capacity: 0, active: 2 });
    await Promise.all([a2.release(), a3.release()]);
    // a's leases expire in Redis (leaseTtl after its last heartbeat): b gets the slot.
    const b3Lease = lease(await b3);
    expect(b.localActive()).toBe(3);

    link.heal();
    await waitFor(() => a.mode === 'online', 10_000, 'a back online');
    // Healed at once: Redis holds exactly the slots somebody runs (b's three), a can take one.
    expect(await raw.zcard(`${prefix}:{/p}:leases`)).toBe(3);
    const a5 = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    expect(await a.acquire('/p', { timeoutMs: 0, maxQueue: 10 })).toMatchObject({ ok: false });
    await Promise.all([b1, b2, b3Lease, a5].map((l) => l.release()));
    expect(await raw.zcard(`${prefix}:{/p}:leases`)).toBe(0);
  }, 30_000);

  it('review: the recovery ends under steady local traffic (no loop waiting for a "clean" pass)', async () => {
    const prefix = uniquePrefix('steady');
    const link = await proxied();
    const a = await makeStore(prefix, { url: link.url, tuning: { fallbackWindowMs: 1500 } });
    await a.setCapacity('/p', 2, 'manual');
    const held = [
      lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 })),
      lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 })),
    ];
    link.cut();
    await waitFor(() => a.mode === 'fallback', 10_000, 'a in fallback');
    // Two loops take and give back a's slots without pause, through the recovery.
    // A refused acquire ends that loop: recorded, so the test fails instead of quietly
    // watching one loop (or none) through the recovery.
    let stop = false;
    let turns = 0;
    const refused: string[] = [];
    const loops = held.map(async (first) => {
      let l: Lease = first;
      while (!stop) {
        await l.release();
        const r = await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 });
        if (!r.ok) {
          refused.push(`${r.reason} in mode ${a.mode}`);
          return;
        }
        l = r.lease;
        turns++;
        await new Promise((res) => setImmediate(res));
      }
      await l.release();
    });
    await waitFor(() => turns > 20, 10_000, 'local traffic');
    link.heal();
    await waitFor(() => a.mode === 'online', 10_000, 'recovered under traffic');
    const atSwitch = turns;
    // Both loops still turn after the switch.
    await waitFor(() => turns > atSwitch + 20 || refused.length > 0, 10_000, 'traffic after');
    stop = true;
    await Promise.all(loops);
    expect(refused).toEqual([]);
    expect(atSwitch).toBeGreaterThan(20);
    expect(a.localActive()).toBe(0);
    expect(await raw.zcard(`${prefix}:{/p}:leases`)).toBe(0);
  }, 30_000);

  it('review: a slot released while its ADOPT is in flight is released in Redis after it', async () => {
    const prefix = uniquePrefix('inflight');
    const link = await proxied();
    const a = await makeStore(prefix, {
      url: link.url,
      tuning: { commandTimeoutMs: 3000, fallbackWindowMs: 1500 },
    });
    await a.setCapacity('/p', 3, 'manual');
    const a1 = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    const a2 = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    link.cut();
    await waitFor(() => a.mode === 'fallback', 10_000, 'a in fallback');
    link.heal();
    link.delay(300);
    await waitFor(() => a.mode === 'recovering', 10_000, 'ADOPT in flight');
    await a1.release();
    await waitFor(() => a.mode === 'online', 10_000, 'online');
    link.delay(0);
    await waitFor(
      async () => (await raw.zcard(`${prefix}:{/p}:leases`)) === 1,
      5_000,
      'only a2 recorded',
    );
    expect(await raw.zrange(`${prefix}:{/p}:leases`, 0, -1)).toEqual([a2.id]);
    await a2.release();
  }, 30_000);

  it("review: a grant to a dead worker's queue entry holds its slot only for the claim window", async () => {
    const prefix = uniquePrefix('dead');
    const a = await makeStore(prefix);
    const b = await makeStore(prefix);
    await a.setCapacity('/p', 1, 'manual');
    const held = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
    // A waiter of a process that died (its entry would live for leaseTtl without a claim), at
    // the head of the queue (key 0: before any round).
    const keys = `${prefix}:{/p}`;
    await raw.zadd(`${keys}:queue`, 0, 'deadproc:1');
    await raw.zadd(`${keys}:qexp`, (await redisNow(raw)) + 60_000, 'deadproc:1');
    const waiting = b.acquire('/p', { timeoutMs: LONG, maxQueue: 10 });
    await waitFor(async () => (await raw.zcard(`${keys}:queue`)) === 2, 5_000, 'b queued');
    const releasedAt = await redisNow(raw);
    await held.release();
    const granted = Number(await raw.zscore(`${keys}:leases`, 'deadproc:1'));
    expect(granted).toBeGreaterThan(releasedAt);
    expect(granted).toBeLessThanOrEqual(releasedAt + 300 + 50);
    // Nobody claims it; b gets the slot once the claim window is over (not after leaseTtl).
    const got = lease(await waiting);
    expect(await raw.zscore(`${keys}:leases`, 'deadproc:1')).toBeNull();
    expect(await redisNow(raw)).toBeLessThan(releasedAt + TTL * 1000);
    await got.release();
  });

  it('review: heartbeats of many pools go out together: a 300 ms link keeps every lease alive', async () => {
    const prefix = uniquePrefix('beat');
    const link = await proxied();
    const a = await makeStore(prefix, {
      url: link.url,
      tuning: { heartbeatMs: 600, commandTimeoutMs: 1500, fallbackWindowMs: 1200 },
    });
    const pools = Array.from({ length: 8 }, (_, i) => `/p${i}`);
    const held: Lease[] = [];
    for (const p of pools) {
      await a.setCapacity(p, 1, 'manual');
      held.push(lease(await a.acquire(p, { timeoutMs: LONG, maxQueue: 10 })));
    }
    link.delay(300);
    // One after another, 8 pools x 600 ms round trips = 4.8 s per beat: past the 2 s lease TTL.
    const until = Date.now() + 3 * TTL * 1000;
    while (Date.now() < until) {
      const counts = await Promise.all(pools.map((p) => raw.zcard(`${prefix}:{${p}}:leases`)));
      expect(counts).toEqual(Array(8).fill(1));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(a.mode).toBe('online');
    link.delay(0);
    await Promise.all(held.map((l) => l.release()));
  }, 30_000);

  it('review: after Redis lost its data (twice), grants wait for the hold and every running slot is recorded', async () => {
    const own = await RedisServer.start();
    let ownRaw: Redis | undefined;
    try {
      const prefix = uniquePrefix('restart');
      const a = await makeStore(prefix, { url: own.url });
      const b = await makeStore(prefix, { url: own.url });
      for (const s of [a, b]) await s.setCapacity('/p', 2, 'manual');
      const a1 = lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
      for (let outage = 1; outage <= 2; outage++) {
        await own.stop();
        await waitFor(() => a.mode !== 'online' && b.mode !== 'online', 10_000, 'both cut off');
        await own.start();
        ownRaw?.disconnect();
        ownRaw = own.client();
        await waitFor(() => a.mode === 'online' && b.mode === 'online', 10_000, 'both back');
        const r = ownRaw;
        const meta = `${prefix}:{/p}:meta`;
        // Capacity and a's running slot went back in one step; nothing is granted until the
        // hold is over (a worker still cut off may reuse its slots until then).
        expect(await r.hget(meta, 'capacity')).toBe('2');
        expect(await r.zrange(`${prefix}:{/p}:leases`, 0, -1)).toEqual([a1.id]);
        const holdUntil = Number(await r.hget(meta, 'hold_until'));
        expect(holdUntil).toBeGreaterThan(await redisNow(r));
        const got = lease(await b.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }));
        expect(await redisNow(r)).toBeGreaterThanOrEqual(holdUntil);
        await got.release();
      }
      await a1.release();
      expect(await ownRaw!.zcard(`${prefix}:{/p}:leases`)).toBe(0);
    } finally {
      ownRaw?.disconnect();
      for (const s of stores.splice(0)) await s.close();
      await own.stop();
    }
  }, 60_000);

  it('Redis unreachable at startup: requests wait for it, and 503 (closed) after the window', async () => {
    const late = RedisServer.at(await freePort());
    try {
      const prefix = uniquePrefix('boot');
      const a = await makeStore(prefix, {
        url: late.url,
        tuning: { connectWaitMs: 200, fallbackWindowMs: 1500 },
      });
      expect(a.isReachable()).toBe(false);
      await a.setCapacity('/p', 2, 'manual');
      // Nothing is held, so nothing can be promised: the request waits for Redis...
      const waiting = a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 });
      await late.start();
      await waitFor(() => a.isReachable(), 10_000, 'recovery');
      const l = lease(await waiting);
      expect(await a.snapshot('/p')).toMatchObject({ capacity: 2, source: 'manual', active: 1 });
      await l.release();
      // ...and a worker whose window passed without Redis answers closed at once.
      await late.stop();
      await waitFor(() => a.mode === 'expired', 10_000, 'window over');
      expect(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 })).toMatchObject({
        ok: false,
        reason: 'closed',
      });
    } finally {
      for (const s of stores.splice(0)) await s.close();
      await late.stop();
    }
  }, 30_000);

  it('SNAPSHOT is read-only: it neither drops expired leases nor grants waiters', async () => {
    const prefix = uniquePrefix('ro');
    const a = await makeStore(prefix);
    await a.setCapacity('/p', 1, 'manual');
    const keys = `${prefix}:{/p}`;
    const now = await redisNow(raw);
    await raw.zadd(`${keys}:leases`, now - 1000, 'gone:1');
    await raw.zadd(`${keys}:queue`, 1, 'other:1');
    await raw.zadd(`${keys}:qexp`, now + 60_000, 'other:1');
    expect(await a.snapshot('/p')).toMatchObject({ capacity: 1, active: 0, queued: 1 });
    expect(await raw.zscore(`${keys}:leases`, 'gone:1')).not.toBeNull();
    expect(await raw.zscore(`${keys}:queue`, 'other:1')).not.toBeNull();
  });

  it('a fallback window not shorter than the lease TTL is refused, naming the option', () => {
    expect(
      () =>
        new RedisCapacityStore(
          { type: 'redis', url: server.url, keyPrefix: 'x', leaseTtl: 2, fallbackWindow: 2 },
          { logger: false },
        ),
    ).toThrow('storage.fallbackWindow must be shorter than storage.leaseTtl');
  });

  it("warns at startup when Redis's maxmemory-policy can evict the balancer's keys", async () => {
    const own = await RedisServer.start();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const ownRaw = own.client();
    try {
      await makeStore(uniquePrefix('mem'), { url: own.url, logger: true });
      expect(warn.mock.calls.flat().join('\n')).not.toMatch(/maxmemory-policy/);
      await ownRaw.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await makeStore(uniquePrefix('mem'), { url: own.url, logger: true });
      expect(warn.mock.calls.flat().join('\n')).toMatch(/maxmemory-policy is 'allkeys-lru'/);
    } finally {
      warn.mockRestore();
      ownRaw.disconnect();
      for (const s of stores.splice(0)) await s.close();
      await own.stop();
    }
  });
});
