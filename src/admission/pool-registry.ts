import { Injectable } from '@nestjs/common';
import type { DeadlinePolicy } from './deadline-policy';
import type { CostPolicy } from './cost-policy';
import type { OverloadPolicy } from './overload-policy';

export interface PoolRoute {
  method: string;
  path: string;
}

/** How the probe should call a pool's endpoint. */
export interface PoolProbeTarget {
  method: string;
  /** Concrete path; `null` when the route has parameters and no `probe.path` was given. */
  path: string | null;
  headers: Record<string, string>;
  body?: unknown;
}

export type ProbeState =
  'pending' | 'running' | 'waiting' | 'done' | 'reused' | 'failed' | 'skipped';

export interface PoolProbeStatus {
  state: ProbeState;
  /** Why the probe failed or was skipped. */
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  /**
   * While probing: the cap real requests are admitted at and where it came from (`stored`: the
   * last probe result, any age; `minimum`: 1). Set by the process that set it.
   */
  interim?: { capacity: number; from: 'stored' | 'minimum' };
  /** While probing: the concurrency level being measured (this process's probe). */
  level?: number;
}

/** One capacity number and one queue, shared by one or more routes. */
export interface ResolvedPool {
  key: string;
  routes: PoolRoute[];
  /** Manual capacity from options or `@Balanced()`; probing is skipped when set. */
  manualCapacity?: number;
  queueTimeoutMs: number;
  maxQueue: number;
  /** Bytes of read bodies that may wait in the queue (per process); `0` or unset: no budget. */
  maxQueueBytes?: number;
  /** `Retry-After` seconds sent with this pool's 504s and queue-full 503s. */
  retryAfter: number;
  /** Overload policies (tenants, priorities, queue target); absent when none is configured. */
  overload?: OverloadPolicy;
  /** How requests tell their deadline (`deadline` / `deadlineHeader`); absent when off. */
  deadline?: DeadlinePolicy;
  /** Cost units (`cost`, `costHeader`, `maxQueueCost`); absent when none is configured. */
  cost?: CostPolicy;
  probe: PoolProbeTarget;
  probeStatus: PoolProbeStatus;
}

/**
 * The pools of this app, filled once at bootstrap by route discovery (which routes use which
 * pool is the `RouteTable`'s).
 */
@Injectable()
export class PoolRegistry {
  private readonly pools = new Map<string, ResolvedPool>();

  /** A pool (discovery, tests, `BalancerService.run` pools). */
  addPool(pool: ResolvedPool): void {
    this.pools.set(pool.key, pool);
  }

  get(key: string): ResolvedPool | undefined {
    return this.pools.get(key);
  }

  all(): ResolvedPool[] {
    return [...this.pools.values()];
  }
}
