/*
 * The cap through loss of pool state and leases that outlive their holder: worker processes
 * (test/fixtures/lease-worker.ts) call a model server outside every worker with the request's
 * `@LeaseSignal()`; the model counts global in-flight work and stops a call whose caller gave
 * up. Real redis-server processes, links cut and redirected through test-owned TCP proxies,
 * a worker frozen with SIGSTOP. Capacity C = 4 throughout.
 */
import type { ChildProcess } from 'node:child_process';
import Redis from 'ioredis';
import { AbortableModel } from '../harness/abortable-model';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { TcpProxy } from '../harness/tcp-proxy';
import { waitFor } from '../harness/wait-for';
import { get, killAll, spawnWorkers, type Worker } from './workers';

const FIXTURE = 'test/fixtures/lease-worker.ts';
const C = 4;

interface Seen {
  aborted: Record<string, number>;
  served: number;
  lostLeases: number;
}

describe('Redis: the cap through state loss, failover and lost leases', () => {
  const children = new Set<ChildProcess>();
  const cleanup: Array<() => Promise<unknown> | void> = [];
  let model: AbortableModel;

  beforeEach(async () => {
    model = await AbortableModel.start();
  });

  afterEach(async () => {
    await killAll(children);
    for (const c of cleanup.splice(0).reverse()) await c();
    await model.close();
  });

  async function worker(
    label: string,
    redisUrl: string,
    keyPrefix: string,
    leaseTtl: number,
  ): Promise<Worker> {
    const config = {
      redisUrl,
      modelUrl: model.url,
      label,
      keyPrefix,
      capacity: C,
      leaseTtl,
      queueTimeout: 60,
    };
    const [w] = await spawnWorkers(FIXTURE, 1, { WORKER_CONFIG: JSON.stringify(config) }, children);
    return w;
  }

  function work(w: Worker, ms: number): Promise<number> {
    return get(`${w.url}/work?ms=${ms}`).then((r) => r.status);
  }

  async function seen(w: Worker): Promise<Seen> {
    return (await get(`${w.url}/seen`)).body as Seen;
  }

  function running(label: string): number {
    return model.byCaller.get(label) ?? 0;
  }

  async function redisAt(url: string): Promise<Redis> {
    const r = new Redis(url, { maxRetriesPerRequest: 1 });
    cleanup.push(() => void r.disconnect());
    return r;
  }

  /** Milliseconds on the Redis server's clock. */
  async function redisNow(r: Redis): Promise<number> {
    const [s, us] = await r.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  it('Redis restarted empty while A runs C requests, cut off; B starts on the new Redis: peak <= C, A aborted, losses counted', async () => {
    const TTL = 3;
    const redis = await RedisServer.start();
    cleanup.push(() => redis.stop());
    const linkA = await TcpProxy.start(redis.port);
    const linkB = await TcpProxy.start(redis.port);
    cleanup.push(
      () => linkA.close(),
      () => linkB.close(),
    );
    const prefix = uniquePrefix('restart');
    // B starts cut off: its first word with Redis comes after the restart, knowing no epoch.
    linkB.cut();
    const [a, b] = await Promise.all([
      worker('A', linkA.url, prefix, TTL),
      worker('B', linkB.url, prefix, TTL),
    ]);

    const aCalls = Array.from({ length: C }, () => work(a, 5000));
    await waitFor(() => running('A') === C, 20_000, 'A runs C requests at the model');

    linkA.cut();
    await redis.stop();
    await redis.start();
    linkB.heal();
    const bCalls = Array.from({ length: C }, () => work(b, 2000));
    await waitFor(() => running('B') > 0, 40_000, 'B is granted a slot on the new Redis');
    linkA.heal();

    const [aStatus, bStatus] = await Promise.all([Promise.all(aCalls), Promise.all(bCalls)]);
    expect(model.peak).toBeLessThanOrEqual(C);
    // A's leases could not be renewed before they expired: its handlers saw their signal fire.
    expect(aStatus).toEqual(Array(C).fill(503));
    expect((await seen(a)).aborted).toEqual({ lost: C });
    expect(bStatus).toEqual(Array(C).fill(200));
    // Counted globally once A is back (its count travels with its recovery).
    await waitFor(async () => (await seen(b)).lostLeases === C, 15_000, 'C lost leases counted');
  });

  it('a worker frozen past its renewal deadline while another has waiters: peak <= C, its signal fires, the loss is counted', async () => {
    const TTL = 5;
    const MARGIN = 500; // lossMarginMs at leaseTtl 5: min(1000, ttl / 10)
    const redis = await RedisServer.start();
    cleanup.push(() => redis.stop());
    const prefix = uniquePrefix('stall');
    const [a, b] = await Promise.all([
      worker('A', redis.url, prefix, TTL),
      worker('B', redis.url, prefix, TTL),
    ]);
    const r = await redisAt(redis.url);
    const leases = `${prefix}:{/work}:leases`;
    const queue = `${prefix}:{/work}:queue`;

    const aCalls = Array.from({ length: C }, () => work(a, 9000));
    await waitFor(() => running('A') === C, 20_000, 'A runs C requests at the model');
    const bCalls = Array.from({ length: 2 }, () => work(b, 1000));
    await waitFor(async () => (await r.zcard(queue)) === 2, 10_000, "B's two requests queued");

    a.signal('SIGSTOP');
    // The expiry Redis holds for A's leases once no renewal can land any more (a heartbeat in
    // flight when A stopped may still arrive: read until two reads agree).
    let expiry = 0;
    for (;;) {
      const scores = await r.zrange(leases, 0, -1, 'WITHSCORES');
      const first = Math.min(...scores.filter((_, i) => i % 2 === 1).map(Number));
      if (first === expiry) break;
      expiry = first;
      await new Promise((res) => setTimeout(res, 100));
    }
    // Resume A past its renewal deadline (expiresBy - margin <= expiry - margin) but before
    // Redis can expire the leases and grant B.
    await waitFor(
      async () => (await redisNow(r)) >= expiry - 0.7 * MARGIN,
      10_000,
      'A past its deadline',
    );
    a.signal('SIGCONT');

    const [aStatus, bStatus] = await Promise.all([Promise.all(aCalls), Promise.all(bCalls)]);
    expect(model.peak).toBeLessThanOrEqual(C);
    expect(aStatus).toEqual(Array(C).fill(503));
    expect((await seen(a)).aborted).toEqual({ lost: C });
    expect(bStatus).toEqual([200, 200]);
    await waitFor(async () => (await seen(b)).lostLeases === C, 10_000, 'C lost leases counted');
  });
  describe.each([
    { cutMs: 500, lost: false },
    { cutMs: 4000, lost: true },
  ])(
    'a partition of one worker while 3 s requests run (cut $cutMs ms, leaseTtl 3 s)',
    ({ cutMs, lost }) => {
      it(
        lost
          ? 'cut past its renewal deadline: its requests stop before their slots go to the waiters, peak <= C'
          : 'healed before its renewal deadline: its requests finish, the waiters wait, peak <= C',
        async () => {
          const TTL = 3;
          const redis = await RedisServer.start();
          cleanup.push(() => redis.stop());
          const linkA = await TcpProxy.start(redis.port);
          cleanup.push(() => linkA.close());
          const prefix = uniquePrefix('partition');
          const [a, b] = await Promise.all([
            worker('A', linkA.url, prefix, TTL),
            worker('B', redis.url, prefix, TTL),
          ]);
          const r = await redisAt(redis.url);

          const aCalls = Array.from({ length: 2 }, () => work(a, 3000));
          await waitFor(() => running('A') === 2, 20_000, 'A runs two requests');
          const bCalls = Array.from({ length: 4 }, () => work(b, 3000));
          await waitFor(() => running('B') === 2, 10_000, 'B runs two requests');
          await waitFor(
            async () => (await r.zcard(`${prefix}:{/work}:queue`)) === 2,
            10_000,
            'two of B queued',
          );

          linkA.cut();
          const cutAt = Date.now();
          await waitFor(() => Date.now() - cutAt >= cutMs, cutMs + 5000, 'the cut lasts');
          linkA.heal();

          const [aStatus, bStatus] = await Promise.all([Promise.all(aCalls), Promise.all(bCalls)]);
          expect(model.peak).toBeLessThanOrEqual(C);
          expect(bStatus).toEqual(Array(4).fill(200));
          expect(aStatus).toEqual(Array(2).fill(lost ? 503 : 200));
          expect((await seen(a)).aborted).toEqual(lost ? { lost: 2 } : {});
        },
      );
    },
  );
});
