import type Redis from 'ioredis';
import { poolKeys, type PoolKeys } from '../../src/storage/redis/keys';
import { ACQUIRE_CODES, SCRIPTS, type ScriptName } from '../../src/storage/redis/scripts';
import {
  DRAIN_EWMA_WEIGHT,
  TRACKED_TENANTS,
  nextRound,
  queueKey,
} from '../../src/storage/queue-order';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { waitFor } from '../harness/wait-for';

/*
 * The Lua scripts of the overload policies, called directly on a real redis-server (no store,
 * no timers): the queue order, the per-waiter and per-tenant tables on every path that removes
 * a waiter, Space-Saving, and the queueTargetMs decision from a given meta state. Leases and
 * waiters live 60 s, far longer than any test, so nothing expires unless a test makes it.
 */

const LIVE_MS = 60_000;

interface Model {
  capacity: number;
  currentRound: number;
  tenants: Map<string, { lastRound: number; queued: number }>;
  queue: Array<{ id: string; key: number; round: number; tenant: string }>;
  leases: Set<string>;
  admitted: Map<string, number>;
}

describe('Redis overload scripts (direct calls on a real redis-server)', () => {
  let server: RedisServer;
  let raw: Redis;

  beforeAll(async () => {
    server = await RedisServer.start();
    raw = server.client();
    for (const [name, def] of Object.entries(SCRIPTS)) raw.defineCommand(name, def);
  });

  afterAll(async () => {
    raw?.disconnect();
    await server?.stop();
  });

  function pool(ttlMs = LIVE_MS) {
    const keys: PoolKeys = poolKeys(uniquePrefix('lua'), '/m');
    const run = <T>(name: ScriptName, args: Array<string | number>): Promise<T> => {
      const fn = (raw as unknown as Record<string, (...a: unknown[]) => Promise<T>>)[name];
      return fn.call(raw, ...keys.script, ttlMs, LIVE_MS, 'grant:', ...args);
    };
    return {
      keys,
      run,
      setCapacity: (capacity: number) =>
        run<string>('balancerSetCapacity', [capacity, 'manual', '', 'epoch', 0]),
      acquire: (
        id: string,
        o: {
          tenant?: string;
          priority?: number;
          aging?: number;
          maxQueue?: number;
          perTenant?: number;
          target?: number;
          interval?: number;
        } = {},
      ) =>
        run<[number, number]>('balancerAcquire', [
          id,
          o.maxQueue ?? 1000,
          o.tenant ?? '',
          o.priority ?? 0,
          o.aging ?? 1000,
          o.perTenant ?? 0,
          o.target ?? '',
          o.interval ?? '',
        ]),
      release: (...ids: string[]) => run<number>('balancerRelease', ids),
      cancel: (id: string, reason: string, tenant = '') =>
        run<number>('balancerCancel', [id, reason, tenant]),
      leave: (...ids: string[]) => run<number>('balancerLeave', ['proc', ...ids]),
      adoptDrop: (...ids: string[]) =>
        run<unknown>('balancerAdopt', [
          'proc',
          'epoch',
          'epoch',
          0,
          '',
          '',
          '0',
          0,
          0,
          0,
          0,
          0,
          0,
          ...ids,
        ]),
      poll: (...ids: string[]) => run<number[]>('balancerPoll', ids),
    };
  }

  /** What Redis holds of the queue and its tables, in comparable form. */
  async function state(keys: PoolKeys) {
    const queue = await raw.zrange(keys.queue, 0, -1, 'WITHSCORES');
    const tenantQueued = await raw.zrange(keys.tenantQueued, 0, -1, 'WITHSCORES');
    const rounds = await raw.hgetall(keys.tenantRounds);
    const waiters = await raw.hkeys(keys.waiters);
    const leases = await raw.zrange(keys.leases, 0, -1);
    const admitted = await raw.zrange(keys.tenantAdmitted, 0, -1, 'WITHSCORES');
    const pairs = (flat: string[]) =>
      Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], Number(flat[2 * i + 1])]);
    return {
      queue: pairs(queue),
      tenantQueued: Object.fromEntries(pairs(tenantQueued).map(([t, c]) => [t, -c])),
      rounds: Object.fromEntries(Object.entries(rounds).map(([t, r]) => [t, Number(r)])),
      waiters: waiters.sort(),
      leases: leases.sort(),
      admitted: Object.fromEntries(pairs(admitted).map(([t, c]) => [t, -c])),
      round: Number((await raw.hget(keys.meta, 'round')) ?? 0),
    };
  }

  function expected(m: Model) {
    const queue = [...m.queue].sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : 1));
    return {
      queue: queue.map((w) => [w.id, w.key]),
      tenantQueued: Object.fromEntries([...m.tenants].map(([t, e]) => [t, e.queued])),
      rounds: Object.fromEntries([...m.tenants].map(([t, e]) => [t, e.lastRound])),
      waiters: m.queue.map((w) => w.id).sort(),
      leases: [...m.leases].sort(),
      admitted: Object.fromEntries(m.admitted),
      round: m.currentRound,
    };
  }

  /** The rules of overload.md, written plainly (at most 4 named tenants: no eviction here). */
  function modelAcquire(
    m: Model,
    id: string,
    tenant: string,
    priority: number,
    aging: number,
    maxQueue: number,
    perTenant: number,
  ): number {
    const count = () => {
      if (tenant !== '') m.admitted.set(tenant, (m.admitted.get(tenant) ?? 0) + 1);
    };
    if (m.queue.length === 0 && m.leases.size < m.capacity) {
      m.leases.add(id);
      count();
      return ACQUIRE_CODES.granted;
    }
    if (m.queue.length >= maxQueue) return ACQUIRE_CODES.queueFull;
    const entry = m.tenants.get(tenant);
    if (perTenant > 0 && (entry?.queued ?? 0) >= perTenant) return ACQUIRE_CODES.tenantQueueFull;
    const round = nextRound(m.currentRound, entry?.lastRound);
    m.tenants.set(tenant, { lastRound: round, queued: (entry?.queued ?? 0) + 1 });
    m.queue.push({ id, key: queueKey(round, priority, aging), round, tenant });
    return ACQUIRE_CODES.queued;
  }

  function modelUnqueue(m: Model, id: string): boolean {
    const i = m.queue.findIndex((w) => w.id === id);
    if (i < 0) return false;
    const [w] = m.queue.splice(i, 1);
    const entry = m.tenants.get(w.tenant)!;
    if (--entry.queued === 0) m.tenants.delete(w.tenant);
    return true;
  }

  function modelPromote(m: Model): string[] {
    const granted: string[] = [];
    while (m.leases.size < m.capacity && m.queue.length > 0) {
      const next = [...m.queue].sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : 1))[0];
      modelUnqueue(m, next.id);
      m.currentRound = Math.max(m.currentRound, next.round);
      if (next.tenant !== '') m.admitted.set(next.tenant, (m.admitted.get(next.tenant) ?? 0) + 1);
      m.leases.add(next.id);
      granted.push(next.id);
    }
    return granted;
  }

  it('a random mix of acquires, cancels, releases, LEAVE and ADOPT drops keeps the order and every table exact', async () => {
    let x = 2026; // xorshift32: the same run every time
    const random = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 4294967296;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
    const p = pool();
    const m: Model = {
      capacity: 3,
      currentRound: 0,
      tenants: new Map(),
      queue: [],
      leases: new Set(),
      admitted: new Map(),
    };
    await p.setCapacity(m.capacity);
    let n = 0;
    const ops: Record<string, number> = {};
    for (let step = 0; step < 600; step++) {
      const op = pick(['acquire', 'acquire', 'acquire', 'release', 'cancel', 'leave', 'adopt']);
      ops[op] = (ops[op] ?? 0) + 1;
      // What the script answered and what the model says it should, checked with the state.
      let answer: unknown = null;
      let want: unknown = null;
      if (op === 'acquire') {
        const id = `proc:${String(n++).padStart(6, '0')}`;
        const tenant = pick(['', '', 'a', 'b', 'c', 'd']);
        const priority = pick([-1, 0, 0, 0, 2]);
        const [code] = await p.acquire(id, {
          tenant,
          priority,
          aging: 3,
          maxQueue: 12,
          perTenant: 4,
        });
        answer = code;
        want = modelAcquire(m, id, tenant, priority, 3, 12, 4);
      } else if (op === 'release' && m.leases.size > 0) {
        const id = pick([...m.leases]);
        m.leases.delete(id);
        answer = await p.release(id);
        want = 1;
        modelPromote(m);
      } else if (op === 'cancel' && m.queue.length > 0) {
        const w = pick(m.queue);
        answer = await p.cancel(w.id, pick(['aborted', 'timeout', 'closed']), w.tenant);
        want = 0;
        modelUnqueue(m, w.id);
        modelPromote(m);
      } else if (op === 'leave' && m.queue.length > 0) {
        const w = pick(m.queue);
        await p.leave(w.id);
        modelUnqueue(m, w.id);
        modelPromote(m);
      } else if (op === 'adopt' && m.queue.length > 0) {
        const w = pick(m.queue);
        await p.adoptDrop(w.id);
        modelUnqueue(m, w.id);
        modelPromote(m);
      }
      expect({ step, op, answer, state: await state(p.keys) }).toEqual({
        step,
        op,
        answer: want,
        state: expected(m),
      });
    }
    // Every kind of step ran many times.
    for (const op of ['acquire', 'release', 'cancel', 'leave', 'adopt'])
      expect(ops[op]).toBeGreaterThan(30);
    // Everyone is served and leaves: nothing of the waiters or their tenants is left in Redis.
    while (m.queue.length > 0 || m.leases.size > 0) {
      await p.release(...m.leases);
      m.leases.clear();
      modelPromote(m);
    }
    expect(await state(p.keys)).toEqual(expected(m));
    expect(
      await raw.exists(p.keys.queue, p.keys.waiters, p.keys.tenantQueued, p.keys.tenantRounds),
    ).toBe(0);
  });

  it('dead waiters are reaped with their tenant counts', async () => {
    const p = pool(300); // waiters live 300 ms unless renewed
    await p.setCapacity(0);
    expect((await p.acquire('proc:1', { tenant: 'dead' }))[0]).toBe(ACQUIRE_CODES.queued);
    expect((await p.acquire('proc:2', { tenant: 'dead' }))[0]).toBe(ACQUIRE_CODES.queued);
    expect(await raw.zscore(p.keys.tenantQueued, 'dead')).toBe('-2');
    // Any later script reaps them once their liveness expired (Redis clock): RELEASE is one.
    await waitFor(
      async () => (await p.release()) === 0 && (await raw.zcard(p.keys.queue)) === 0,
      5000,
      'the waiters reaped',
    );
    expect(await p.poll('proc:1', 'proc:2')).toEqual([-1, -1]);
    expect(
      await raw.exists(p.keys.queue, p.keys.waiters, p.keys.tenantQueued, p.keys.tenantRounds),
    ).toBe(0);
  });

  it('a grant given back (waiter gone) takes back its tenant admission', async () => {
    const p = pool();
    await p.setCapacity(1);
    await p.acquire('proc:0', { tenant: 'x' });
    await p.acquire('proc:1', { tenant: 'x' });
    await p.release('proc:0');
    expect(await raw.zscore(p.keys.tenantAdmitted, 'x')).toBe('-2');
    expect(await p.cancel('proc:1', 'aborted', 'x')).toBe(2);
    expect(await raw.zscore(p.keys.tenantAdmitted, 'x')).toBe('-1');
    expect(await raw.hget(p.keys.meta, 'admitted')).toBe('1');
  });

  it(`admitted tenants: Space-Saving over ${TRACKED_TENANTS} entries, the default tenant never counted`, async () => {
    const p = pool();
    await p.setCapacity(1);
    let n = 0;
    const admit = async (tenant: string) => {
      const id = `proc:${n++}`;
      expect((await p.acquire(id, { tenant }))[0]).toBe(ACQUIRE_CODES.granted);
      await p.release(id);
    };
    await admit('');
    await admit('top');
    await admit('top');
    for (let i = 0; i < TRACKED_TENANTS - 1; i++) await admit(`t${String(i).padStart(3, '0')}`);
    expect(await raw.zcard(p.keys.tenantAdmitted)).toBe(TRACKED_TENANTS);
    await admit('late');
    expect(await raw.zcard(p.keys.tenantAdmitted)).toBe(TRACKED_TENANTS);
    expect(await raw.zscore(p.keys.tenantAdmitted, 't000')).toBeNull();
    expect(await raw.zscore(p.keys.tenantAdmitted, 'late')).toBe('-2');
    expect(await raw.zscore(p.keys.tenantAdmitted, '')).toBeNull();
  });

  it('queueTargetMs: shed only while standing with a known drain, counting the waiters ahead; Retry-After from the whole queue', async () => {
    const p = pool();
    await p.setCapacity(1);
    await p.acquire('proc:h');
    const target = { target: 100, interval: 500 };
    for (let i = 0; i < 4; i++)
      expect((await p.acquire(`proc:${i}`, target))[0]).toBe(ACQUIRE_CODES.queued);
    expect(await raw.hmget(p.keys.meta, 'target', 'target_interval')).toEqual(['100', '500']);
    const [s] = await raw.time();
    const now = Number(s) * 1000;
    // Above the target for longer than the interval, draining one every 30 ms.
    await raw.hset(p.keys.meta, 'above_since', now - 10_000, 'drain_ms', 30);
    // 4 ahead: (4 + 1) x 30 > 100: shed, Retry-After ceil(4 x 30 / 1000) -> at least 1.
    expect(await p.acquire('proc:late', target)).toEqual([ACQUIRE_CODES.shed, 1]);
    // Priority 5 (aging 1000): nobody ahead, 30 <= 100: queued.
    expect((await p.acquire('proc:urgent', { ...target, priority: 5 }))[0]).toBe(
      ACQUIRE_CODES.queued,
    );
    // A drain so slow that the queue takes 2.5 s: Retry-After 3.
    await raw.hset(p.keys.meta, 'drain_ms', 500);
    expect(await p.acquire('proc:late2', target)).toEqual([ACQUIRE_CODES.shed, 3]);
    // Not standing (above for less than the interval): queued whatever the prediction.
    await raw.hset(p.keys.meta, 'above_since', now + 60_000);
    expect((await p.acquire('proc:ok', target))[0]).toBe(ACQUIRE_CODES.queued);
    // Without a target nothing is shed.
    await raw.hset(p.keys.meta, 'above_since', now - 10_000);
    expect((await p.acquire('proc:plain'))[0]).toBe(ACQUIRE_CODES.queued);
    expect(await raw.hmget(p.keys.meta, 'rejected', 'shed')).toEqual(['2', '2']);
    expect(await raw.zcard(p.keys.queue)).toBe(7);
  });

  it('queueTargetMs: a grant from the queue samples its wait and the drain gap (EWMA); a short wait or an empty queue ends the spell', async () => {
    const p = pool();
    await p.setCapacity(1);
    await p.acquire('proc:h');
    const target = { target: 50, interval: 250 };
    for (const id of ['proc:0', 'proc:1', 'proc:2']) await p.acquire(id, target);
    const enqueuedAt = async (id: string, at: number) => {
      const [round, , tenant] = (await raw.hget(p.keys.waiters, id))!.split(' ');
      await raw.hset(p.keys.waiters, id, `${round} ${at} ${tenant}`);
    };
    const before = await redisNow();
    // proc:0 waited 1 s, the previous grant from the queue was 100 ms ago, drain 40 ms so far.
    await enqueuedAt('proc:0', before - 1000);
    await raw.hset(p.keys.meta, 'last_grant_at', before - 100, 'drain_ms', 40);
    await p.release('proc:h');
    const after = await redisNow();
    const [aboveSince, lastGrantAt, drain] = (
      await raw.hmget(p.keys.meta, 'above_since', 'last_grant_at', 'drain_ms')
    ).map(Number);
    expect(aboveSince).toBeGreaterThanOrEqual(before);
    expect(aboveSince).toBeLessThanOrEqual(after);
    expect(lastGrantAt).toBe(aboveSince);
    const w = DRAIN_EWMA_WEIGHT;
    expect(drain).toBeGreaterThanOrEqual((1 - w) * 40 + w * 100);
    expect(drain).toBeLessThanOrEqual((1 - w) * 40 + w * (100 + after - before));
    // proc:1 waited less than the target (it "arrived" later): the spell ends, the queue
    // still holds proc:2, so the gap in progress stays.
    await enqueuedAt('proc:1', after + 60_000);
    await p.release('proc:0');
    expect(await raw.hget(p.keys.meta, 'above_since')).toBeNull();
    expect(await raw.hget(p.keys.meta, 'last_grant_at')).not.toBeNull();
    // proc:2 empties the queue: no gap in progress either; the average stays.
    await p.release('proc:1');
    expect(await raw.hmget(p.keys.meta, 'last_grant_at', 'drain_ms')).toEqual([
      null,
      expect.any(String),
    ]);
  });

  async function redisNow(): Promise<number> {
    const [s, us] = await raw.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }
});
