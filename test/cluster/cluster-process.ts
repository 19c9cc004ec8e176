import type { ChildProcess } from 'node:child_process';
import type { ClusterConfig } from '../fixtures/cluster-app';
import type { ModelServerStats } from '../fixtures/cluster-model';
import { get, spawnWorkers, type Worker } from '../redis/workers';

/*
 * Processes of the cluster suites: the model server (test/fixtures/cluster-model.ts, one
 * process outside the workers) and a `node:cluster` app (test/fixtures/cluster-app.ts: a
 * primary and its workers on one port), both run by ts-node (transpile only).
 */

/** True capacity of the model: flat latency up to K in flight. */
export const K = 4;
/** Service time at or below K, ms; above K at least 10 S. */
export const S = 80;
const MEMORY_WARNING = /storage is memory in a node:cluster worker/;

/** The memory store's startup warning lines in a cluster's output. */
export function memoryStoreWarnings(output: string): string[] {
  return output.split('\n').filter((l) => MEMORY_WARNING.test(l));
}

export interface PoolStats {
  capacity: number | null;
  capacity_source: string;
  admitted: number;
  probe: { state: string; error: string | null };
}

async function spawnOne(
  fixture: string,
  env: Record<string, string>,
  children: Set<ChildProcess>,
): Promise<Worker> {
  // Generous: N workers each compile the sources (ts-node) on a shared 2-core box.
  const [w] = await spawnWorkers(fixture, 1, env, children, 240_000);
  return w;
}

export async function startModel(children: Set<ChildProcess>): Promise<Worker> {
  return spawnOne(
    'test/fixtures/cluster-model.ts',
    {
      MODEL_CONFIG: JSON.stringify({ capacity: K, serviceTimeMs: S, slowdown: 8, failAt: 1000 }),
    },
    children,
  );
}

export async function startCluster(
  config: ClusterConfig,
  children: Set<ChildProcess>,
): Promise<Worker> {
  return spawnOne(
    'test/fixtures/cluster-app.ts',
    { CLUSTER_CONFIG: JSON.stringify(config) },
    children,
  );
}

export async function modelStats(model: Worker): Promise<ModelServerStats> {
  return (await get(`${model.url}/stats`)).body as ModelServerStats;
}

export async function resetModel(model: Worker): Promise<void> {
  await fetch(`${model.url}/reset`, { method: 'POST' });
}

export async function poolStats(app: Worker): Promise<Record<string, PoolStats>> {
  return ((await get(`${app.url}/balancer/stats`)).body as { endpoints: Record<string, PoolStats> })
    .endpoints;
}

/** `clients` loops of `each` sequential requests; resolves with every status. */
export async function load(
  url: string,
  clients: number,
  each: number,
  headers: () => Record<string, string> = () => ({}),
): Promise<number[]> {
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < each; i++) statuses.push((await get(url, { headers: headers() })).status);
    }),
  );
  return statuses;
}
