import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PROBE_HEADER } from '../../src/config/balancer.constants';
import type { ModelServerStats } from '../fixtures/cluster-model';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { waitFor } from '../harness/wait-for';
import { killAll, type Worker } from '../redis/workers';
import {
  K,
  S,
  load,
  memoryStoreWarnings,
  modelStats,
  poolStats,
  resetModel,
  startCluster,
  startModel,
} from './cluster-process';

/*
 * Several `node:cluster` workers on one port with the Redis store, the way most teams run a
 * Node app on one host. The model lives in its own process and counts in-flight over all
 * workers: a knee at K = 4 (S = 80 ms up to 4 in flight, at least 10 S above). The latency
 * limit (7 S) leaves 480 ms for scheduler noise on a busy 2-core box (a first probe overlapping
 * the other workers' boot saw p99 350 ms at K at load average 20); noise only adds latency,
 * so a level above K can never pass. The probe sends its
 * requests to the shared port, so the cluster hands them to every worker; they must all let
 * them through (the probe token is published in Redis), or the probe measures a queue.
 *
 * Two pools behind the same model, probed one after another at startup (whichever worker
 * takes each pool's lock): two probe runs per cluster, each with its own token. Two is what
 * the assertions need (every run reaches every worker, the token rotates between runs); each
 * further pool only adds a probe of about 14 s to the serial timing pass.
 */

const POOLS = ['a', 'b'];

// Four workers: every assertion is per worker (each probe reached every one, each let its
// requests through) or global (the cap over all of them), so a smaller cluster adds nothing but
// another ~50 s of boot and probes to the serial timing pass.
describe.each([4])('%i node:cluster workers on one port, Redis store', (workers) => {
  const children = new Set<ChildProcess>();
  let redis: { url: string; stop(): Promise<void> };
  let model: Worker;
  let app: Worker;
  /** What the model server saw during the startup probes. */
  let probed: ModelServerStats;

  beforeAll(async () => {
    redis = await sharedRedis();
    model = await startModel(children);
    app = await startCluster(
      {
        workers,
        storage: { type: 'redis', url: redis.url, keyPrefix: uniquePrefix('cluster') },
        modelUrl: model.url,
        pools: POOLS,
        probeOnStartup: true,
        latencyThresholdMs: 7 * S,
        // Short levels; the knee's margins (7 S limit, >= 10 S above K) absorb a busy CPU. The
        // latency limit decides on this shape, not throughput: a level above K (>= 10 S a
        // request) fails on any sample, so its window need not span the default 10 latencies.
        // Up to 6: the step-up 1, 2, 4, 6 (fails), then the limit search tests 5 (fails), so
        // the gap above K is still searched; a step to 8 would only add a failing level of
        // 16 S requests (~5 s per probe). The search itself over wide ranges is
        // test/probe/probe.e2e-spec.ts.
        probe: {
          warmupMs: 100,
          levelDurationMs: 400,
          minSamples: 6,
          maxConcurrency: 6,
          levelLatencies: 2,
        },
      },
      children,
    );
    await waitFor(() => app.output().includes('SETTLED'), 180_000, 'every worker to settle');
    probed = await modelStats(model);
  }, 480_000);

  afterAll(async () => {
    await app?.kill('SIGTERM');
    await model?.kill('SIGTERM');
    await killAll(children);
    await redis?.stop();
  });

  it('finds the true capacity in every probe run, with requests reaching every worker', async () => {
    const endpoints = await poolStats(app);
    const found = POOLS.map((p) => endpoints[`/${p}`]);
    const report = found.map((s) => `${s.capacity} (${s.capacity_source}, ${s.probe.state})`);
    expect(report).toEqual(
      POOLS.map(() => expect.stringMatching(new RegExp(`^${K} \\(probe, (done|reused)\\)$`))),
    );
    const seen = probed;
    // One token per probe, rotated, well-formed; each probe's requests reached every worker
    // (each level opens new connections, which the cluster hands out round-robin), and every
    // one of them let the requests through.
    expect(seen.probeTokens).toHaveLength(POOLS.length);
    for (const t of seen.probeTokens) {
      expect(t).toMatch(/^[0-9a-f]{48}$/);
      expect(Object.keys(seen.probeHitsByToken[t] ?? {})).toHaveLength(workers);
    }
    // Never logged.
    for (const t of seen.probeTokens) expect(app.output()).not.toContain(t);
    expect(memoryStoreWarnings(app.output())).toEqual([]);
    expect(app.output()).not.toContain('WORKER EXIT');
  });

  it('caps the model globally afterwards: peak in flight <= capacity under many clients', async () => {
    await resetModel(model);
    const statuses = await load(`${app.url}/a`, 24, 5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const seen = await modelStats(model);
    expect(seen.served).toBe(24 * 5);
    expect(seen.peak).toBeLessThanOrEqual(K);
    expect(seen.peak).toBeGreaterThanOrEqual(K - 1); // the cap was in use, not starved
  });

  it('admits a request carrying a stale or forged probe token like any other', async () => {
    const stale = probed.probeTokens;
    expect(stale.length).toBeGreaterThan(0);
    const before = (await poolStats(app))['/b'].admitted;
    await resetModel(model);
    let i = 0;
    const headers = (): Record<string, string> => {
      const n = i++;
      const token = n % 2 === 0 ? stale[n % stale.length] : randomBytes(24).toString('hex');
      return { [PROBE_HEADER]: token };
    };
    const statuses = await load(`${app.url}/b`, 24, 2, headers);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const seen = await modelStats(model);
    expect(seen.served).toBe(48);
    expect(seen.peak).toBeLessThanOrEqual(K);
    // They went through admission (probe requests are not counted there).
    expect((await poolStats(app))['/b'].admitted - before).toBe(48);
  });
});
