/**
 * Key layout. Every key of a pool carries the hash tag `{pool}` under the prefix, so one pool's
 * keys live in one Redis Cluster slot and a script may touch all of them.
 */
export interface PoolKeys {
  readonly meta: string;
  readonly leases: string;
  readonly queue: string;
  readonly qexp: string;
  readonly workers: string;
  readonly probe: string;
  readonly lock: string;
  /** The running probe's header token (see `ProbeTokens`), with the lock's TTL. */
  readonly probeToken: string;
  /** meta, leases, queue, qexp: the KEYS of most scripts. */
  readonly four: readonly string[];
  /** The four plus workers. */
  readonly five: readonly string[];
}

export function poolKeys(prefix: string, pool: string): PoolKeys {
  const tag = `${prefix}:{${pool}}`;
  const four = [`${tag}:meta`, `${tag}:leases`, `${tag}:queue`, `${tag}:qexp`];
  return {
    meta: four[0],
    leases: four[1],
    queue: four[2],
    qexp: four[3],
    workers: `${tag}:workers`,
    probe: `${tag}:probe`,
    lock: `${tag}:probe-lock`,
    probeToken: `${tag}:probe-token`,
    four,
    five: [...four, `${tag}:workers`],
  };
}

/** Grants are published on `<grantPrefix><processId>`, with the waiter id as the message. */
export function grantPrefix(prefix: string): string {
  return `${prefix}:grant:`;
}
