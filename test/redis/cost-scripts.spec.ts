import type Redis from 'ioredis';
import { poolKeys } from '../../src/storage/redis/keys';
import { ACQUIRE_CODES, SCRIPTS, type ScriptName } from '../../src/storage/redis/scripts';
import { RedisServer, uniquePrefix } from '../harness/redis';

/*
 * The units bookkeeping of the Lua scripts (scripts/units.ts), called directly on a real
 * redis-server, on the paths the store contract cannot reach from one healthy process: a lease
 * that expires (its worker was killed), a lease recorded again by a heartbeat during a hold, a
 * grant given back by a cancel, and a worker leaving. Each must give back or record exactly the
 * units of its lease, so the units in flight never drift.
 */

const TTL = 2000;

describe('Redis cost-unit scripts: expiry, hold, cancel and leave keep units exact', () => {
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
    const keys = poolKeys(uniquePrefix('units'), '/gen');
    const run = <T>(name: ScriptName, args: Array<string | number>): Promise<T> => {
      const fn = (raw as unknown as Record<string, (...a: unknown[]) => Promise<T>>)[name];
      return fn.call(raw, ...keys.script, TTL, 1000, 'grant:', ...args);
    };
    return {
      keys,
      setCapacity: (capacity: number, known = '') =>
        run<string>('balancerSetCapacity', [capacity, 'manual', known, 'e1', 0]),
      /** ACQUIRE of `cost` units (maxQueue 100, no tenant, no priority, no target). */
      acquire: (id: string, cost: number) =>
        run<[number, number]>('balancerAcquire', [id, 100, '', 0, 1000, 0, '', '', cost, 0]),
      release: (id: string) => run<number>('balancerRelease', [id]),
      cancel: (id: string) => run<number>('balancerCancel', [id, 'aborted', '']),
      leave: (proc: string, ids: string[]) => run<number>('balancerLeave', [proc, ...ids]),
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
      /** Units in flight and queued, as SNAPSHOT reports them. */
      units: async () => {
        const reply = await run<unknown[]>('balancerSnapshot', []);
        return reply[13] as [number, number, number];
      },
    };
  }

  it('an expired costed lease gives its units back: the next request of that size fits', async () => {
    const p = pool();
    await p.setCapacity(10);
    expect((await p.acquire('a:1', 8))[0]).toBe(ACQUIRE_CODES.granted);
    expect((await p.acquire('b:1', 5))[0]).toBe(ACQUIRE_CODES.queued);
    // a's worker was killed: its lease passes its expiry without renewal.
    await raw.zadd(p.keys.leases, 1, 'a:1');
    await p.release('nobody');
    // The reap dropped a:1 with its 8 units; b:1 (5) was granted in the same script.
    expect(await raw.zscore(p.keys.leases, 'b:1')).not.toBeNull();
    expect((await p.units()).slice(0, 2)).toEqual([5, 0]);
    expect(await raw.hget(p.keys.costs, 'a:1')).toBeNull();
  });

  it('during a hold, a heartbeat records a lost costed lease again with its units', async () => {
    const p = pool();
    await p.setCapacity(10);
    // Redis lost the pool's state (restart without persistence) while a:1 (7 units) still runs.
    await raw.del(...p.keys.script);
    await p.setCapacity(10, 'e-old');
    const [, , lost] = await p.beat('a', 'e-old', ['a:1#7']);
    expect(lost).toEqual([]);
    expect(await raw.hget(p.keys.costs, 'a:1')).toBe('7');
    expect((await p.units())[0]).toBe(7);
  });

  it('a cancel that finds its grant gives the units back; leave drops the units of its leases', async () => {
    const p = pool();
    await p.setCapacity(10);
    expect((await p.acquire('a:1', 10))[0]).toBe(ACQUIRE_CODES.granted);
    expect((await p.acquire('b:1', 6))[0]).toBe(ACQUIRE_CODES.queued);
    expect((await p.acquire('c:1', 4))[0]).toBe(ACQUIRE_CODES.queued);
    expect((await p.units()).slice(0, 2)).toEqual([10, 10]);
    await p.release('a:1');
    // b and c granted (6 + 4); b's client left before it heard: its cancel gives 6 back.
    expect((await p.units()).slice(0, 2)).toEqual([10, 0]);
    expect(await p.cancel('b:1')).toBe(2);
    expect((await p.units()).slice(0, 2)).toEqual([4, 0]);
    await p.leave('c', ['c:1']);
    expect((await p.units()).slice(0, 2)).toEqual([0, 0]);
    expect(await raw.hlen(p.keys.costs)).toBe(0);
    expect(await raw.hget(p.keys.meta, 'lx')).toBeNull();
  });
});
