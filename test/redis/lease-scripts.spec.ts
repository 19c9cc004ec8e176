import type Redis from 'ioredis';
import { poolKeys } from '../../src/storage/redis/keys';
import { ACQUIRE_CODES, SCRIPTS, type ScriptName } from '../../src/storage/redis/scripts';
import { RedisServer, uniquePrefix } from '../harness/redis';

/*
 * The renewal and hold rules of the Lua scripts, called directly on a real redis-server: a lease
 * Redis no longer has is lost (never recorded again over someone else's grant) unless the pool
 * is in a hold after a loss of state; a young Redis holds a new pool; state written by another
 * server (a different replication id) is held before any grant.
 */

const TTL = 2000;

describe('Redis lease scripts: renewal, holds after a loss of state (direct calls)', () => {
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

  function pool() {
    const keys = poolKeys(uniquePrefix('lease'), '/m');
    const run = <T>(name: ScriptName, args: Array<string | number>): Promise<T> => {
      const fn = (raw as unknown as Record<string, (...a: unknown[]) => Promise<T>>)[name];
      return fn.call(raw, ...keys.script, TTL, 1000, 'grant:', ...args);
    };
    return {
      keys,
      /** SET_CAPACITY: capacity, source, knownEpoch, freshEpoch, youngMs. */
      setCapacity: (capacity: number, youngMs: number, known = '') =>
        run<string>('balancerSetCapacity', [capacity, 'manual', known, 'e1', youngMs]),
      acquire: (id: string) =>
        run<[number, number]>('balancerAcquire', [id, 100, '', 0, 1000, 0, '', '']),
      /** HEARTBEAT of process `proc` for `leases`: { workers, capacity, lost, source, epoch }. */
      beat: (proc: string, known: string, leases: string[]) =>
        run<[number, number, string[], string, string]>('balancerHeartbeat', [
          proc,
          known,
          'e-fresh',
          0,
          '',
          '',
          leases.length,
          ...leases,
        ]),
    };
  }

  it('a lease Redis no longer has is lost, not recorded again; one it has is renewed', async () => {
    const p = pool();
    await p.setCapacity(2, 0);
    expect((await p.acquire('a:1'))[0]).toBe(ACQUIRE_CODES.granted);
    expect((await p.acquire('a:2'))[0]).toBe(ACQUIRE_CODES.granted);
    // a:2 expired (its process stalled), and b took the slot.
    await raw.zrem(p.keys.leases, 'a:2');
    expect((await p.acquire('b:1'))[0]).toBe(ACQUIRE_CODES.granted);

    const [, , lost, , epoch] = await p.beat('a', 'e1', ['a:1', 'a:2']);
    expect(lost).toEqual(['a:2']);
    expect(epoch).toBe('e1');
    expect((await raw.zrange(p.keys.leases, 0, -1)).sort()).toEqual(['a:1', 'b:1']);
  });

  it('a pool created on a young Redis grants nothing until its start + youngMs, whoever creates it', async () => {
    const p = pool();
    const [s, us] = await raw.time();
    const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    const up = Number(/uptime_in_seconds:(\d+)/.exec(await raw.info('server'))![1]);
    // A worker that never knew an epoch: with the young-Redis rule it is held.
    await p.setCapacity(2, 3_600_000);
    const holdUntil = Number(await raw.hget(p.keys.meta, 'hold_until'));
    expect(holdUntil).toBeGreaterThanOrEqual(now - (up + 1) * 1000 + 3_600_000);
    expect(holdUntil).toBeLessThanOrEqual(now + 3_600_000 + 1000);
    expect((await p.acquire('b:1'))[0]).toBe(ACQUIRE_CODES.queued);

    // During the hold, a holder's heartbeat records again the slots Redis lost.
    const [, , lost] = await p.beat('a', 'e-old', ['a:1']);
    expect(lost).toEqual([]);
    expect(await raw.zscore(p.keys.leases, 'a:1')).not.toBeNull();

    // Without the rule (youngMs 0) and no known epoch: no hold.
    const q = pool();
    await q.setCapacity(2, 0);
    expect(await raw.hget(q.keys.meta, 'hold_until')).toBeNull();
    expect((await q.acquire('b:1'))[0]).toBe(ACQUIRE_CODES.granted);
  });

  it('state written by another server (replication id) is held before any grant, with a new epoch', async () => {
    const p = pool();
    await p.setCapacity(2, 0);
    // As a promoted replica or a restored file would find it: meta from another server.
    await raw.hset(p.keys.meta, 'replid', 'another-server');
    expect((await p.acquire('b:1'))[0]).toBe(ACQUIRE_CODES.queued);
    const meta = await raw.hgetall(p.keys.meta);
    expect(meta.epoch).not.toBe('e1');
    expect(meta.replid).not.toBe('another-server');
    expect(Number(meta.hold_until)).toBeGreaterThan(Date.now() - 1000);
    // A holder that knew the old state records its slot during the hold.
    const [, , lost, , epoch] = await p.beat('a', 'e1', ['a:1']);
    expect(lost).toEqual([]);
    expect(epoch).toBe(meta.epoch);
  });
});
