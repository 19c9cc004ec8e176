import Redis from 'ioredis';
import type { CapacityStore, Lease } from '../../src/storage/capacity-store.interface';
import { RedisCapacityStore, type RedisStoreTuning } from '../../src/storage/redis-capacity.store';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { waitFor } from '../harness/wait-for';

/*
 * Redis-only behaviour of the store, with several stores in one process standing in for
 * workers (the multi-process suites do the same with real processes and SIGKILL).
 */

const LONG = 30_000;

function lease(r: Awaited<ReturnType<CapacityStore['acquire']>>): Lease {
  if (!r.ok) throw new Error(`expected a slot, got ${r.reason}`);
  return r.lease;
}

/** CRC16/XMODEM mod 16384 of the hash tag: the Redis Cluster slot of a key. */
function clusterSlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const tagged = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tagged)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

describe('RedisCapacityStore across workers (real redis-server)', () => {
  let server: RedisServer;
  let raw: Redis;
  const stores: RedisCapacityStore[] = [];

  async function makeStore(
    prefix: string,
    opts: {
      url?: string;
      leaseTtl?: number;
      tuning?: Partial<RedisStoreTuning>;
      client?: unknown;
    } = {},
  ): Promise<RedisCapacityStore> {
    const store = new RedisCapacityStore(
      {
        type: 'redis',
        url: opts.client ? undefined : (opts.url ?? server.url),
        client: opts.client,
        keyPrefix: prefix,
        leaseTtl: opts.leaseTtl ?? 5,
      },
      { logger: false, tuning: opts.tuning },
    );
    stores.push(store);
    await store.init();
    return store;
  }

  async function queued(store: CapacityStore, pool: string, n: number): Promise<void> {
    await waitFor(async () => (await store.snapshot(pool)).queued === n, 10_000, `${n} queued`);
  }

  beforeAll(async () => {
    server = await RedisServer.start();
    raw = server.client();
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  afterAll(async () => {
    raw?.disconnect();
    await server?.stop();
  });

  it('two workers share one capacity and one FIFO queue', async () => {
    const prefix = uniquePrefix();
    const a = await makeStore(prefix);
    const b = await makeStore(prefix);
    await a.setCapacity('/p', 2, 'manual');
    const held = [lease(await a.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }))];
    held.push(lease(await b.acquire('/p', { timeoutMs: LONG, maxQueue: 10 })));
    // Full for both: the global cap, not one per worker.
    expect(await b.acquire('/p', { timeoutMs: 100, maxQueue: 10 })).toMatchObject({
      reason: 'timeout',
    });

    const order: string[] = [];
    const waiters: Array<Promise<Lease>> = [];
    const who = ['a0', 'b1', 'a2', 'b3', 'b4', 'a5'];
    for (const [i, name] of who.entries()) {
      const store = name.startsWith('a') ? a : b;
      waiters.push(
        store.acquire('/p', { timeoutMs: LONG, maxQueue: 10 }).then((r) => {
          order.push(name);
          return lease(r);
        }),
      );
      await queued(a, '/p', i + 1);
    }
    // Release one slot at a time; each release admits exactly the oldest waiter, whichever worker.
    let current = held.shift()!;
    for (let i = 0; i < who.length; i++) {
      await current.release();
      await waitFor(() => order.length === i + 1, 10_000, `grant ${i}`);
      expect(order).toEqual(who.slice(0, i + 1));
      current = await waiters[i];
    }
    await current.release();
    await held[0].release();
    expect(await a.snapshot('/p')).toMatchObject({ active: 0, queued: 0, capacity: 2 });
    expect((await b.snapshot('/p')).counters.admitted).toBe(2 + who.length);
  });

  it('maxQueue is global', async () => {
    const prefix = uniquePrefix();
    const a = await makeStore(prefix);
    const b = await makeStore(prefix);
    await a.setCapacity('/q', 1, 'manual');
    const holder = lease(await a.acquire('/q', { timeoutMs: LONG, maxQueue: 2 }));
    const w1 = a.acquire('/q', { timeoutMs: LONG, maxQueue: 2 });
    const w2 = b.acquire('/q', { timeoutMs: LONG, maxQueue: 2 });
    await queued(a, '/q', 2);
    expect(await b.acquire('/q', { timeoutMs: LONG, maxQueue: 2 })).toMatchObject({
      reason: 'queue_full',
    });
    expect(await a.acquire('/q', { timeoutMs: LONG, maxQueue: 2 })).toMatchObject({
      reason: 'queue_full',
    });
    await holder.release();
    await lease(await w1).release();
    await lease(await w2).release();
  });

  it('a lost grant message costs latency, not a timeout: the poll finds the grant', async () => {
    const prefix = uniquePrefix();
    const a = await makeStore(prefix, { tuning: { pollMs: 100 } });
    await a.setCapacity('/lost', 1, 'manual');
    // A slot held by "someone else", which the test frees by hand without any message.
    const tag = `${prefix}:{/lost}`;
    await raw.zadd(`${tag}:leases`, Date.now() + 60_000, 'other:1');
    const waiter = a.acquire('/lost', { timeoutMs: 10_000, maxQueue: 10 });
    await queued(a, '/lost', 1);
    const [id] = await raw.zrange(`${tag}:queue`, 0, 0);
    // What a release script does, minus the PUBLISH.
    await raw
      .multi()
      .zrem(`${tag}:leases`, 'other:1')
      .zrem(`${tag}:queue`, id)
      .zrem(`${tag}:qexp`, id)
      .zadd(`${tag}:leases`, Date.now() + 60_000, id)
      .exec();
    const l = lease(await waiter);
    expect(l.id).toBe(id);
    await l.release();
    expect(await a.snapshot('/lost')).toMatchObject({ active: 0, queued: 0 });
  });

  it("a dead worker's leases and queued waiters expire, and the queue moves on", async () => {
    const prefix = uniquePrefix();
    const a = await makeStore(prefix, { tuning: { pollMs: 100 } });
    await a.setCapacity('/dead', 1, 'manual');
    const tag = `${prefix}:{/dead}`;
    const [sec] = await raw.time();
    const now = Number(sec) * 1000;
    // A worker that died holding the slot, and one of its waiters at the head of the queue.
    await raw.zadd(`${tag}:leases`, now + 1500, 'ghost:1');
    await raw.zadd(`${tag}:queue`, 0, 'ghost:2');
    await raw.zadd(`${tag}:qexp`, now + 1500, 'ghost:2');
    const start = Date.now();
    const r = await a.acquire('/dead', { timeoutMs: 15_000, maxQueue: 10 });
    const l = lease(r);
    expect(Date.now() - start).toBeLessThan(10_000);
    expect(await raw.zscore(`${tag}:leases`, 'ghost:2')).toBeNull();
    await l.release();
    expect(await a.snapshot('/dead')).toMatchObject({ active: 0, queued: 0 });
  });

  it('every key of a pool shares one hash tag (one Cluster slot) under the prefix', async () => {
    const prefix = uniquePrefix('layout');
    const a = await makeStore(prefix);
    await a.setCapacity('/v1/items/:id', 1, 'manual');
    const holder = lease(await a.acquire('/v1/items/:id', { timeoutMs: LONG, maxQueue: 10 }));
    const waiter = a.acquire('/v1/items/:id', { timeoutMs: LONG, maxQueue: 10 });
    await queued(a, '/v1/items/:id', 1);
    await a.saveProbeResult('/v1/items/:id', {
      maxConcurrency: 1,
      measuredAt: '',
      durationMs: 1,
      report: null,
    });
    const lock = await a.tryProbeLock('/v1/items/:id', 10_000);
    const keys = await raw.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThanOrEqual(6);
    for (const key of keys) expect(key.startsWith(`${prefix}:{/v1/items/:id}:`)).toBe(true);
    expect(new Set(keys.map(clusterSlot)).size).toBe(1);
    await lock?.release();
    await holder.release();
    await lease(await waiter).release();
  });

  it('two prefixes on one Redis do not see each other', async () => {
    const one = await makeStore(uniquePrefix('one'));
    const two = await makeStore(uniquePrefix('two'));
    await one.setCapacity('/shared', 1, 'manual');
    await two.setCapacity('/shared', 1, 'manual');
    const l1 = lease(await one.acquire('/shared', { timeoutMs: 1000, maxQueue: 10 }));
    const l2 = lease(await two.acquire('/shared', { timeoutMs: 1000, maxQueue: 10 }));
    expect((await one.snapshot('/shared')).active).toBe(1);
    expect((await two.snapshot('/shared')).active).toBe(1);
    await one.saveProbeResult('/shared', {
      maxConcurrency: 9,
      measuredAt: '',
      durationMs: 1,
      report: null,
    });
    expect(await two.getProbeResult('/shared')).toBeNull();
    await l1.release();
    await l2.release();
  });

  it("close gives this worker's slots back at once; an existing client is used and never closed", async () => {
    const prefix = uniquePrefix();
    const client = new Redis(server.url);
    try {
      const a = await makeStore(prefix, { client });
      const b = await makeStore(prefix);
      await b.setCapacity('/own', 2, 'manual');
      lease(await a.acquire('/own', { timeoutMs: LONG, maxQueue: 10 }));
      lease(await a.acquire('/own', { timeoutMs: LONG, maxQueue: 10 }));
      const waiter = b.acquire('/own', { timeoutMs: LONG, maxQueue: 10 });
      await queued(b, '/own', 1);
      await a.close();
      // The waiter of the other worker gets the slot without waiting for any lease expiry.
      await lease(await waiter).release();
      expect(await b.snapshot('/own')).toMatchObject({ active: 0, queued: 0 });
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});
