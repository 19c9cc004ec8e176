import { Injectable } from '@nestjs/common';

/** Marks a handler wrapper (guard admission) and points at the function it wraps. */
export const WRAPPED_ORIGINAL = Symbol.for('nestjs-balancer.wrapped-original');

/** The function a wrapper stands for (or `fn` itself). */
export function unwrapHandler<T>(fn: T): T {
  return ((fn as { [WRAPPED_ORIGINAL]?: T } | null)?.[WRAPPED_ORIGINAL] ?? fn) as T;
}

/** Where a watched handler lives: the prototype Nest reads `prototype[name]` from. */
export interface HandlerSite {
  proto: Record<string | symbol, unknown>;
  name: string;
  /** The controller instance discovery found the method on (for the class Nest reads). */
  instance: object;
}

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
  /** Bytes of read bodies that may wait in the queue (per process); `0` or unset: no budget. */
  maxQueueBytes?: number;
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
  private readonly siteList: HandlerSite[] = [];
  /** `METHOD path` -> pool, built on first use (after discovery). */
  private byRoute?: Map<string, ResolvedPool>;

  /** `handler` is the original function (a wrapper is unwrapped first). */
  register(handler: object, pool: ResolvedPool, site?: HandlerSite): void {
    const original = unwrapHandler(handler);
    this.byHandler.set(original, pool);
    this.pools.set(pool.key, pool);
    this.byRoute = undefined;
    if (site && !this.siteList.some((s) => s.proto === site.proto && s.name === site.name)) {
      this.siteList.push(site);
    }
  }

  /**
   * Let `wrapper` (the function Nest calls and hands to guards as `getHandler()`) find its
   * original's pool in one lookup on every request.
   */
  alias(wrapper: object): void {
    const pool = this.byHandler.get(unwrapHandler(wrapper));
    if (pool) this.byHandler.set(wrapper, pool);
  }

  /** Prototype + method name of every watched handler, once each. */
  sites(): HandlerSite[] {
    return [...this.siteList];
  }

  /** Accepts the original function or its admission wrapper. */
  forHandler(handler: unknown): ResolvedPool | undefined {
    return (
      this.byHandler.get(handler as object) ??
      this.byHandler.get((handler as { [WRAPPED_ORIGINAL]?: object })?.[WRAPPED_ORIGINAL] as object)
    );
  }

  /**
   * The pool of a route by HTTP method and route path pattern (`/items/:id`, global prefix
   * included), for code that runs before Nest's routing (early admission). HEAD falls back to
   * GET; routes declared with `@All()` match every method.
   */
  forRoute(method: string, path: string): ResolvedPool | undefined {
    if (!this.byRoute) {
      this.byRoute = new Map();
      for (const pool of this.pools.values()) {
        for (const r of pool.routes) this.byRoute.set(`${r.method} ${r.path}`, pool);
      }
    }
    const m = method.toUpperCase();
    return (
      this.byRoute.get(`${m} ${path}`) ??
      (m === 'HEAD' ? this.byRoute.get(`GET ${path}`) : undefined) ??
      this.byRoute.get(`ALL ${path}`)
    );
  }

  get(key: string): ResolvedPool | undefined {
    return this.pools.get(key);
  }

  all(): ResolvedPool[] {
    return [...this.pools.values()];
  }
}
