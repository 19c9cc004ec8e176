/*
 * A primary/replica failover while requests run: real redis-server processes (the replica
 * started with --replicaof, promoted with REPLICAOF NO ONE), workers (test/fixtures/
 * lease-worker.ts) reaching Redis through test-owned TCP proxies that are pointed at the new
 * primary, and a model server outside every worker counting global in-flight work. C = 4.
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
const TTL = 3;

interface Seen {
  aborted: Record<string, number>;
  served: number;
  lostLeases: number;
}

describe('Redis failover: the cap when a replica is promoted', () => {
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

  async function worker(label: string, redisUrl: string, keyPrefix: string): Promise<Worker> {
    const config = {
      redisUrl,
      modelUrl: model.url,
      label,
      keyPrefix,
      capacity: C,
      leaseTtl: TTL,
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

  function client(server: RedisServer): Redis {
    const r = server.client();
    cleanup.push(() => void r.disconnect());
    return r;
  }

  /** A primary (with `primaryArgs`) and a replica of it, replicating through `via` if given. */
  async function pair(primaryArgs: string[], via?: 'proxy') {
    const primary = await RedisServer.start({ args: primaryArgs });
    cleanup.push(() => primary.stop());
    const replLink = via ? await TcpProxy.start(primary.port) : undefined;
    if (replLink) cleanup.push(() => replLink.close());
    const replica = await RedisServer.start({
      args: ['--replicaof', '127.0.0.1', String(replLink?.port ?? primary.port)],
    });
    cleanup.push(() => replica.stop());
    const r = client(replica);
    await waitFor(
      async () => (await r.info('replication')).includes('master_link_status:up'),
      10_000,
      'the replica in sync',
    );
    return { primary, replica, replLink, r };
  }

  it('the replica missed the last grants (asynchronous replication): held after promotion, peak <= C', async () => {
    const { primary, replica, replLink, r } = await pair([], 'proxy');
    const linkA = await TcpProxy.start(primary.port);
    const linkB = await TcpProxy.start(primary.port);
    cleanup.push(
      () => linkA.close(),
      () => linkB.close(),
    );
    const prefix = uniquePrefix('failover');
    const [a, b] = await Promise.all([
      worker('A', linkA.url, prefix),
      worker('B', linkB.url, prefix),
    ]);
    const meta = `${prefix}:{/work}:meta`;
    await waitFor(async () => (await r.hget(meta, 'capacity')) === String(C), 10_000, 'replicated');

    // From here the replica hears nothing: A's grants and renewals live on the primary only.
    replLink!.cut();
    const aCalls = Array.from({ length: C }, () => work(a, 6000));
    await waitFor(() => running('A') === C, 20_000, 'A runs C requests at the model');
    const bCalls = Array.from({ length: 2 }, () => work(b, 1000));
    const p = client(primary);
    await waitFor(async () => (await p.zcard(`${prefix}:{/work}:queue`)) === 2, 10_000, 'B queued');
    expect(await r.zcard(`${prefix}:{/work}:leases`)).toBe(0);

    linkA.cut();
    linkB.cut();
    await primary.stop();
    await r.call('REPLICAOF', 'NO', 'ONE');
    linkA.retarget(replica.port);
    linkB.retarget(replica.port);
    // B reaches the new primary first: its waiters queue again there, on a state without A's
    // leases. Without a hold they would be granted at once, beside A's C requests.
    linkB.heal();
    await waitFor(
      async () => (await r.zcard(`${prefix}:{/work}:queue`)) === 2,
      10_000,
      'B queued on the new primary',
    );
    linkA.heal();

    const [aStatus, bStatus] = await Promise.all([Promise.all(aCalls), Promise.all(bCalls)]);
    expect(model.peak).toBeLessThanOrEqual(C);
    expect(bStatus).toEqual([200, 200]);
    // A renewed its leases on the new primary during the hold (200), or, if it reconnected
    // only after its deadline, lost them and stopped (503, counted).
    const seenA = await seen(a);
    expect(seenA.served + (seenA.aborted.lost ?? 0)).toBe(C);
    expect(aStatus.filter((s) => s === 200).length).toBe(seenA.served);
  });

  describe.each([
    {
      settings: 'min-replicas-to-write 1',
      args: ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '10'],
    },
    { settings: 'no settings', args: [] },
  ])(
    'split brain: A stays on the old primary, B moves to the promoted replica ($settings)',
    ({ args }) => {
      const guarded = args.length > 0;

      it(
        guarded
          ? 'the old primary refuses writes: A loses its leases and stops, peak <= C'
          : 'A goes on on the old primary: peak <= 2C while the split lasts (the documented bound)',
        async () => {
          const { primary, replica, r } = await pair(args);
          const linkA = await TcpProxy.start(primary.port);
          const linkB = await TcpProxy.start(primary.port);
          cleanup.push(
            () => linkA.close(),
            () => linkB.close(),
          );
          const prefix = uniquePrefix('split');
          const [a, b] = await Promise.all([
            worker('A', linkA.url, prefix),
            worker('B', linkB.url, prefix),
          ]);

          const aCalls = Array.from({ length: C }, () => work(a, 7000));
          await waitFor(() => running('A') === C, 20_000, 'A runs C requests at the model');
          const bCalls = Array.from({ length: 2 }, () => work(b, 1000));
          await waitFor(
            async () => (await r.zcard(`${prefix}:{/work}:queue`)) === 2,
            10_000,
            'B queued (replicated)',
          );

          await r.call('REPLICAOF', 'NO', 'ONE');
          linkB.cut();
          linkB.retarget(replica.port);
          linkB.heal();

          const [aStatus, bStatus] = await Promise.all([Promise.all(aCalls), Promise.all(bCalls)]);
          expect(bStatus).toEqual([200, 200]);
          // With min-replicas-to-write the old primary refuses A's renewals: A's requests lose
          // their leases (503, signal aborted). Without it A goes on: the documented 2C bound.
          const expected = guarded
            ? { peakAtMost: C, a: Array(C).fill(503), aborted: { lost: C } }
            : { peakAtMost: 2 * C, a: Array(C).fill(200), aborted: {} };
          expect(model.peak).toBeLessThanOrEqual(expected.peakAtMost);
          expect(aStatus).toEqual(expected.a);
          expect((await seen(a)).aborted).toEqual(expected.aborted);
        },
      );
    },
  );
});
