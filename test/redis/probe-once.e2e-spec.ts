import type { ChildProcess } from 'node:child_process';
import { RedisServer, uniquePrefix } from '../harness/redis';
import { waitFor } from '../harness/wait-for';
import { get, killAll, spawnWorkers, type Worker } from './workers';

/*
 * The startup probe across worker processes sharing one Redis: one worker measures, the others
 * wait for its published result; force_reprobe measures again once, not once per worker; a
 * prober killed mid-probe loses its lock when it expires and another worker finishes the job.
 * Each worker's /model route is a SimulatedModel; a prober probes its own server, so the
 * worker whose route saw probe requests is the one that probed.
 */

const K = 4;
/**
 * Knee-shaped: S ms up to K in flight, >= 10 S above. The latency limit sits at 7 S: a level
 * above K can never pass, and a level at K passes through stalls of up to 6 S (240 ms) of a
 * worker process on a loaded 2-core machine (at 5 S two runs found 3 at load average 8).
 */
const S = 40;
/** `probe.lockTtlMs`: how long a dead prober's lock blocks the others (default 15 s). */
const LOCK_TTL_MS = 3000;

interface ModelStats {
  capacity: number | null;
  capacity_source: string;
  probe: { state: string; measured_at: string | null; error: string | null };
}

function probeConfig(
  redisUrl: string,
  prefix: string,
  opts: { forceReprobe?: boolean; levelMs?: number } = {},
) {
  return {
    WORKER_CONFIG: JSON.stringify({
      redisUrl,
      counterUrl: redisUrl,
      keyPrefix: prefix,
      capacity: 4,
      leaseTtl: 2,
      queueTimeout: 60,
      probe: {
        k: K,
        serviceTimeMs: S,
        forceReprobe: opts.forceReprobe ?? false,
        latencyThresholdMs: 7 * S,
        tuning: {
          warmupMs: 100,
          levelDurationMs: opts.levelMs ?? 300,
          // The latency limit decides on the knee: a level above K fails on any sample.
          levelLatencies: 2,
          minSamples: 10,
          // Step-up 1, 2, 4, 6 (fails), then the limit search tests 5 (fails): the gap above K
          // is searched; a step to 8 would only add a failing level of 20 S requests (~3 s per
          // probe, three probes). The search over wide ranges is test/probe/probe.e2e-spec.ts.
          maxConcurrency: 6,
          lockTtlMs: LOCK_TTL_MS,
        },
      },
    }),
  };
}

describe('startup probe across worker processes (Redis)', () => {
  const children = new Set<ChildProcess>();
  let server: RedisServer;

  beforeAll(async () => {
    server = await RedisServer.start();
  });

  afterAll(async () => {
    await killAll(children);
    await server?.stop();
  });

  async function model(w: Worker): Promise<ModelStats> {
    const r = await get(`${w.url}/balancer/stats`);
    return (r.body as { endpoints: Record<string, ModelStats> }).endpoints['/model'];
  }

  async function probeHits(w: Worker): Promise<number> {
    return ((await get(`${w.url}/peak`)).body as { probeHits: number }).probeHits;
  }

  async function settled(workers: Worker[], timeoutMs = 60_000): Promise<ModelStats[]> {
    await waitFor(
      async () =>
        (await Promise.all(workers.map(model))).every((s) =>
          ['done', 'reused'].includes(s.probe.state),
        ),
      timeoutMs,
      'every worker to settle its probe',
    );
    return Promise.all(workers.map(model));
  }

  it('probes once for all workers; force_reprobe measures once more, not once per worker', async () => {
    const prefix = uniquePrefix('probe');
    const first = await spawnWorkers(
      'test/fixtures/redis-worker.ts',
      3,
      probeConfig(server.url, prefix),
      children,
      90_000,
    );
    const round1 = await settled(first);
    expect(round1.map((s) => s.probe.state).sort()).toEqual(['done', 'reused', 'reused']);
    const hits1 = await Promise.all(first.map(probeHits));
    expect(hits1.filter((h) => h > 0)).toHaveLength(1);
    // Everyone enforces the one published number, the model's true K.
    for (const s of round1) expect(s).toMatchObject({ capacity: K, capacity_source: 'probe' });
    expect(new Set(round1.map((s) => s.probe.measured_at)).size).toBe(1);
    await Promise.all(first.map((w) => w.kill()));

    const second = await spawnWorkers(
      'test/fixtures/redis-worker.ts',
      2,
      probeConfig(server.url, prefix, { forceReprobe: true }),
      children,
      90_000,
    );
    const round2 = await settled(second);
    expect(round2.map((s) => s.probe.state).sort()).toEqual(['done', 'reused']);
    expect((await Promise.all(second.map(probeHits))).filter((h) => h > 0)).toHaveLength(1);
    expect(Date.parse(round2[0].probe.measured_at!)).toBeGreaterThan(
      Date.parse(round1[0].probe.measured_at!),
    );
    expect(round2[0].probe.measured_at).toBe(round2[1].probe.measured_at);
    for (const s of round2) expect(s).toMatchObject({ capacity: K, capacity_source: 'probe' });
    await Promise.all(second.map((w) => w.kill()));
  }, 180_000);

  it('a prober killed mid-probe: its lock expires and another worker finishes the probe', async () => {
    const prefix = uniquePrefix('probekill');
    // Long levels, so the probe is still running when the test kills the prober.
    const workers = await spawnWorkers(
      'test/fixtures/redis-worker.ts',
      2,
      probeConfig(server.url, prefix, { levelMs: 1500 }),
      children,
      90_000,
    );
    let prober: Worker | undefined;
    await waitFor(
      async () => {
        for (const w of workers) if ((await model(w)).probe.state === 'running') prober = w;
        return prober !== undefined;
      },
      30_000,
      'a worker to start probing',
    );
    const survivor = workers.find((w) => w !== prober)!;
    expect((await model(survivor)).probe.state).toBe('waiting');
    await prober!.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await probeHits(survivor)).toBe(0);

    // The dead prober's lock lasts its TTL (lockTtlMs), then the survivor probes and publishes.
    await waitFor(
      async () => (await model(survivor)).probe.state === 'running',
      30_000,
      'the survivor to take over',
    );
    // Not before the lock expired (it was renewed at most a third of the TTL before the kill).
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual((2 / 3) * LOCK_TTL_MS - 100);
    await waitFor(
      async () => (await model(survivor)).probe.state === 'done',
      90_000,
      'the survivor to finish',
    );
    const s = await model(survivor);
    expect(s).toMatchObject({ capacity: K, capacity_source: 'probe' });
    expect(await probeHits(survivor)).toBeGreaterThan(0);
    const check = server.client();
    expect(JSON.parse((await check.get(`${prefix}:{/model}:probe`))!)).toMatchObject({
      maxConcurrency: s.capacity,
    });
    check.disconnect();
    await survivor.kill();
  }, 180_000);
});
