/**
 * Key layout. Every key of a pool carries the hash tag `{pool}` under the prefix, so one pool's
 * keys live in one Redis Cluster slot and a script may touch all of them. Tenant names (they
 * come from requests) are never part of a key name, only hash fields and sorted-set members.
 */
export interface PoolKeys {
  readonly meta: string;
  readonly leases: string;
  readonly queue: string;
  readonly qexp: string;
  readonly workers: string;
  /** Hash: waiter id -> its round, enqueue time and tenant. */
  readonly waiters: string;
  /** Sorted set: tenant with waiters -> minus its queued count. */
  readonly tenantQueued: string;
  /** Hash: tenant with waiters -> its last round. */
  readonly tenantRounds: string;
  /** Sorted set: tracked tenant -> minus its admitted count (heavy hitters). */
  readonly tenantAdmitted: string;
  /** Hash: waiter or lease id -> its units, for units other than 1 (see `scripts/units.ts`). */
  readonly costs: string;
  readonly probe: string;
  readonly lock: string;
  /** The running probe's header token (see `ProbeTokens`), with the lock's TTL. */
  readonly probeToken: string;
  /** The KEYS of every pool script, in the order of `POOL_SCRIPT_KEYS`. */
  readonly script: readonly string[];
}

/** Suffixes of the KEYS every pool script receives, in order (`KEYS[1]` is the meta hash). */
export const POOL_SCRIPT_KEYS = [
  'meta',
  'leases',
  'queue',
  'qexp',
  'workers',
  'waiters',
  'tenant-queued',
  'tenant-rounds',
  'tenant-admitted',
  'costs',
] as const;

export function poolKeys(prefix: string, pool: string): PoolKeys {
  const tag = `${prefix}:{${pool}}`;
  const script = POOL_SCRIPT_KEYS.map((name) => `${tag}:${name}`);
  const [
    meta,
    leases,
    queue,
    qexp,
    workers,
    waiters,
    tenantQueued,
    tenantRounds,
    tenantAdmitted,
    costs,
  ] = script;
  return {
    meta,
    leases,
    queue,
    qexp,
    workers,
    waiters,
    tenantQueued,
    tenantRounds,
    tenantAdmitted,
    costs,
    probe: `${tag}:probe`,
    lock: `${tag}:probe-lock`,
    probeToken: `${tag}:probe-token`,
    script,
  };
}

/** Grants are published on `<grantPrefix><processId>`, with the waiter id as the message. */
export function grantPrefix(prefix: string): string {
  return `${prefix}:grant:`;
}
