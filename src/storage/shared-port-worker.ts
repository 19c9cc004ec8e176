import cluster from 'node:cluster';

/**
 * How this process shares its port with sibling processes, or `null` when it runs alone:
 * a `node:cluster` worker (PM2's cluster mode forks these too), or a PM2 instance started with
 * more than one instance. Used to warn that the memory store keeps per-process caps there.
 */
export function sharedPortWorker(env: NodeJS.ProcessEnv = process.env): string | null {
  if (cluster.isWorker) return `a node:cluster worker (worker ${cluster.worker?.id ?? '?'})`;
  const pm2Id = env.pm_id ?? env.NODE_APP_INSTANCE;
  if (pm2Id === undefined) return null;
  // PM2 sets `instances` from the app's config; one instance in fork mode shares nothing.
  const instances = env.instances;
  if (instances !== undefined && Number(instances) === 1) return null;
  return `PM2 instance ${pm2Id}`;
}
