import type { ChildProcess } from 'node:child_process';
import type { PlatformName } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { killAll, spawnWorkers, type Worker } from '../redis/workers';
import type { OverloadWorkerConfig } from './overload-worker';
import { PROPERTY_PLATFORMS, TARGET_MS, TARGET_QUEUE_TIMEOUT_S } from './properties';

/*
 * The two worker processes of a Redis overload suite, on one Redis. Each process
 * (overload-worker.ts) serves the app on every adapter the properties are measured on
 * (PROPERTY_PLATFORMS), each adapter's apps on a key prefix of their own: two processes give
 * every adapter its two workers.
 */

/** The two workers' base URLs for one adapter. */
export type WorkerPair = [string, string];

/** The port of each adapter's app, from the worker's `PORTS express:<p> fastify:<p>` line. */
function urlOf(worker: Worker, platform: PlatformName): string {
  const m = new RegExp(`PORTS .*\\b${platform}:(\\d+)`).exec(worker.output());
  if (!m) throw new Error(`worker ${worker.pid} printed no ${platform} port: ${worker.output()}`);
  return `http://127.0.0.1:${m[1]}`;
}

/**
 * Start Redis and the two workers in the suite's beforeAll, stop them in its afterAll; the
 * returned function gives the pair of one adapter.
 */
export function useRedisWorkers(): (platform: PlatformName) => WorkerPair {
  const children = new Set<ChildProcess>();
  const pairs = new Map<PlatformName, WorkerPair>();
  let redis: { url: string; stop(): Promise<void> } | undefined;

  beforeAll(async () => {
    redis = await sharedRedis();
    const config: OverloadWorkerConfig = {
      redisUrl: redis.url,
      keyPrefix: uniquePrefix('ov'),
      targetMs: TARGET_MS,
      targetQueueTimeoutS: TARGET_QUEUE_TIMEOUT_S,
      policies: 'endpoints',
      platforms: PROPERTY_PLATFORMS,
    };
    const [one, two] = await spawnWorkers(
      'test/overload/overload-worker.ts',
      2,
      { WORKER_CONFIG: JSON.stringify(config) },
      children,
      120_000,
    );
    for (const platform of PROPERTY_PLATFORMS)
      pairs.set(platform, [urlOf(one, platform), urlOf(two, platform)]);
  }, 150_000);

  afterAll(async () => {
    await killAll(children);
    await redis?.stop();
  });

  return (platform) => {
    const pair = pairs.get(platform);
    if (!pair) throw new Error(`no workers for ${platform}`);
    return pair;
  };
}
