import type { CommandRunner } from './command-runner';

/**
 * Redis evicts keys under memory pressure unless `maxmemory-policy` is `noeviction`: `allkeys-*`
 * may drop any key (leases, queue, capacity), `volatile-*` the ones with a TTL (the worker list,
 * the probe lock). Either silently breaks the cap, so say it at startup. Managed Redis services
 * often refuse CONFIG: then nothing is said.
 */
export async function evictionWarning(runner: CommandRunner): Promise<string | null> {
  let policy: string | undefined;
  try {
    const reply = (await runner.call((c) =>
      c.call('CONFIG', 'GET', 'maxmemory-policy'),
    )) as unknown;
    if (Array.isArray(reply)) policy = String(reply[1]);
  } catch {
    return null;
  }
  if (policy === undefined || policy === 'noeviction') return null;
  return `Redis maxmemory-policy is '${policy}': under memory pressure Redis may evict the balancer's keys (leases, queue, worker list) and the global cap no longer holds; set maxmemory-policy to noeviction (or give the balancer a Redis of its own)`;
}
