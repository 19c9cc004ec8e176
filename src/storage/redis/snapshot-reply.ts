import type {
  CapacitySource,
  PoolCounters,
  PoolSnapshot,
  TenantCount,
} from '../capacity-store.interface';

/** The reply of the SNAPSHOT script (see `scripts/snapshot.ts`). */
export type SnapshotReply = [
  capacity: number,
  source: string,
  active: number,
  queued: number,
  admitted: number,
  rejected: number,
  timedOut: number,
  shed: number,
  queuedTop: Array<string | number> | null,
  admittedTop: Array<string | number> | null,
  shedding: number | null,
  drainMs: string | null,
  lost: number,
  units: [active: number, queued: number, admitted: number] | null,
];

/** A pool's global numbers as SNAPSHOT read them. */
export interface GlobalNumbers {
  /** -1: unknown. */
  capacity: number;
  /** '': never set. */
  source: string;
  counters: PoolCounters;
  /** Leases lost by every worker. */
  lost: number;
  snapshot: Omit<PoolSnapshot, 'workers'>;
}

function tenantCounts(flat: Array<string | number>): TenantCount[] {
  const out: TenantCount[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2)
    out.push({ tenant: String(flat[i]), count: Number(flat[i + 1]) });
  return out;
}

export function readSnapshot(pool: string, reply: SnapshotReply): GlobalNumbers {
  const [capacity, source, active, queued, admitted, rejected, timedOut, shed] = reply;
  const [queuedTop, admittedTop, shedding, drainMs] = [reply[8], reply[9], reply[10], reply[11]];
  const counters = { admitted, rejected, timedOut, shed };
  const snapshot: Omit<PoolSnapshot, 'workers'> = {
    pool,
    capacity: capacity < 0 ? null : capacity,
    source: (source || 'probing') as CapacitySource,
    active,
    queued,
    counters: { ...counters },
  };
  if (queuedTop && admittedTop)
    snapshot.tenants = { queued: tenantCounts(queuedTop), admitted: tenantCounts(admittedTop) };
  if (shedding !== null)
    snapshot.overload = {
      shedding: shedding === 1,
      drainMs: drainMs === null ? null : Number(drainMs),
    };
  const units = reply[13];
  if (units) snapshot.units = { active: units[0], queued: units[1], admitted: units[2] };
  return { capacity, source, counters, lost: Number(reply[12] ?? 0), snapshot };
}
