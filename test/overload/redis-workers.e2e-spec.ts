import type { ChildProcess } from 'node:child_process';
import { PLATFORMS, type PlatformName } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { killAll, spawnWorkers, type Worker } from '../redis/workers';
import type { OverloadWorkerConfig } from './overload-worker';
import { latencyOf, median } from './load';
import {
  B_SAMPLES_FAIR,
  B_SAMPLES_FIFO,
  expectBurstsNotShed,
  expectPriorityServedNext,
  expectStandingOverloadShed,
  expectTenantIsolation,
  overloadFigures,
  runBursts,
  runPriority,
  runStandingOverload,
  runTenants,
  SERVED_P50_BOUND_MS,
  TARGET_MS,
  TARGET_QUEUE_TIMEOUT_S,
} from './properties';

/*
 * Issue 11 across two worker processes on one Redis: the tenant, priority and queueTargetMs
 * properties hold for the global queue, with the same bounds as on the memory store
 * (properties.ts). Each worker process (test/overload/overload-worker.ts) serves the app on
 * Express and on Fastify, each adapter's apps on a key prefix of their own: two processes give
 * every adapter its two workers.
 */

/** One worker process's app on one adapter. */
interface Server {
  url: string;
}

const children = new Set<ChildProcess>();
let redis: { url: string; stop(): Promise<void> };
const servers = new Map<PlatformName, [Server, Server]>();

/** The port of each adapter's app, from the worker's `PORTS express:<p> fastify:<p>` line. */
function serverOf(worker: Worker, platform: PlatformName): Server {
  const m = new RegExp(`PORTS .*\\b${platform}:(\\d+)`).exec(worker.output());
  if (!m) throw new Error(`worker ${worker.pid} printed no ${platform} port: ${worker.output()}`);
  return { url: `http://127.0.0.1:${m[1]}` };
}

beforeAll(async () => {
  redis = await sharedRedis();
  const config: OverloadWorkerConfig = {
    redisUrl: redis.url,
    keyPrefix: uniquePrefix('ov'),
    targetMs: TARGET_MS,
    targetQueueTimeoutS: TARGET_QUEUE_TIMEOUT_S,
    policies: 'endpoints',
  };
  const [one, two] = await spawnWorkers(
    'test/overload/overload-worker.ts',
    2,
    { WORKER_CONFIG: JSON.stringify(config) },
    children,
    120_000,
  );
  for (const platform of PLATFORMS)
    servers.set(platform, [serverOf(one, platform), serverOf(two, platform)]);
}, 150_000);

afterAll(async () => {
  await killAll(children);
  await redis?.stop();
});

describe.each(PLATFORMS)('overload policies across two workers on Redis (%s)', (platform) => {
  const pair = (): [Server, Server] => {
    const p = servers.get(platform);
    if (!p) throw new Error(`no workers for ${platform}`);
    return p;
  };

  it('tenants: B on worker 2 keeps its median within the bound next to A on both; FIFO does not', async () => {
    const [w1, w2] = pair();
    const aUrl = (c: number) => (c % 2 === 0 ? w1.url : w2.url);
    const fair = await runTenants({
      path: '/tenanted',
      aUrl,
      bUrl: () => w2.url,
      statsUrl: w1.url,
      bSamples: B_SAMPLES_FAIR,
    });
    const fifo = await runTenants({
      path: '/fifo',
      aUrl,
      bUrl: () => w2.url,
      statsUrl: w1.url,
      bSamples: B_SAMPLES_FIFO,
    });
    expectTenantIsolation(fair, fifo);
  }, 60_000);

  it('priorities: a high-priority request on worker 2 is granted before the lows queued on worker 1', async () => {
    const [w1, w2] = pair();
    expectPriorityServedNext(
      await runPriority({
        holdUrl: w1.url,
        lowUrl: w1.url,
        highUrl: w2.url,
        statsUrl: w2.url,
        logUrl: w1.url,
      }),
    );
  });

  it('queueTargetMs: bursts spread over both workers shed nothing', async () => {
    const [w1, w2] = pair();
    expectBurstsNotShed(await runBursts((i) => (i % 2 === 0 ? w1.url : w2.url), w2.url));
  });

  it('queueTargetMs: shedding is global: worker 2, under capacity on its own, is shed like worker 1', async () => {
    const [w1, w2] = pair();
    // Worker 1 receives 5/6 of the 3 x C/S load (2.5 x), worker 2 1/6 (0.5 x: on its own it
    // would never queue). The queue and the decision are global, so both see the same state.
    const run = await runStandingOverload((i) => (i % 6 === 5 ? w2.url : w1.url));
    expectStandingOverloadShed(run);
    const one = overloadFigures(run.window.filter((s) => s.url === w1.url));
    const two = overloadFigures(run.window.filter((s) => s.url === w2.url));
    const shedShare = (f: typeof one) => f.shed / f.sent;
    // Both fractions estimate one probability; half of worker 1's leaves room for worker 2's
    // small sample (about 30 requests in the window).
    expect({ one, two, same: shedShare(two) >= shedShare(one) / 2 }).toMatchObject({
      same: true,
    });
    const servedTwo = run.window.filter((s) => s.url === w2.url && s.status === 200);
    expect(median(servedTwo.map(latencyOf))).toBeLessThanOrEqual(SERVED_P50_BOUND_MS);
  }, 30_000);
});
