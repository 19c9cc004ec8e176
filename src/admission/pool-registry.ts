import { Injectable } from '@nestjs/common';

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
}

/** One capacity number and one queue, shared by one or more routes. */
export interface ResolvedPool {
  key: string;
  routes: PoolRoute[];
  /** Manual capacity from options or `@Balanced()`; probing is skipped when set. */
  manualCapacity?: number;
  queueTimeoutMs: number;
  maxQueue: number;
  /** `Retry-After` seconds sent with this pool's 504s and queue-full 503s. */
  retryAfter: number;
  probe: PoolProbeTarget;
  probeStatus: PoolProbeStatus;
}

/**
 * Watched routes, filled once at bootstrap by route discovery. The interceptor's only cost on
 * an unwatched route is one `Map` lookup by handler function.
 */
@Injectable()
export class PoolRegistry {
  private readonly byHandler = new Map<object, ResolvedPool>();
  private readonly pools = new Map<string, ResolvedPool>();

  register(handler: object, pool: ResolvedPool): void {
    this.byHandler.set(handler, pool);
    this.pools.set(pool.key, pool);
  }

  /** Handler functions of every watched route. */
  handlers(): object[] {
    return [...this.byHandler.keys()];
  }

  forHandler(handler: unknown): ResolvedPool | undefined {
    return this.byHandler.get(handler as object);
  }

  get(key: string): ResolvedPool | undefined {
    return this.pools.get(key);
  }

  all(): ResolvedPool[] {
    return [...this.pools.values()];
  }
}
