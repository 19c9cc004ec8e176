import { Injectable } from '@nestjs/common';
import { normalizePath } from '../config/resolve-options';
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
  probe: PoolProbeTarget;
  probeStatus: PoolProbeStatus;
}

/** One watched route: where it is served and which pool admits it. */
export interface WatchedRoute extends PoolRoute {
  /** The controller class Nest instantiated (`context.getClass()`). */
  controller: object;
  /** Name of the handler method (`context.getHandler().name`, kept by wrappers). */
  name: string;
  pool: ResolvedPool;
  /** `true` when the route carries `@Balanced()` (guard + method wrapper); `false` when it is
   * watched only through `endpoints` (the global interceptor admits it). */
  decorated: boolean;
}

/**
 * Watched routes, filled once at bootstrap by route discovery. A request's route is found from
 * data that survives handler wrappers (tracing and APM instrumentation replace the function
 * Nest calls): the controller class and method name, and, when one method serves several paths,
 * the path the HTTP adapter matched. Never by function identity.
 */
@Injectable()
export class PoolRegistry {
  private readonly byClass = new Map<object, Map<string, WatchedRoute[]>>();
  private readonly byRoute = new Map<string, WatchedRoute>();
  /** `METHOD path` served by routes of different pools (e.g. header-versioned): no route. */
  private readonly shared = new Set<string>();
  private readonly pools = new Map<string, ResolvedPool>();
  private readonly list: WatchedRoute[] = [];

  register(route: WatchedRoute): void {
    this.pools.set(route.pool.key, route.pool);
    this.list.push(route);
    let methods = this.byClass.get(route.controller);
    if (!methods) this.byClass.set(route.controller, (methods = new Map()));
    const same = methods.get(route.name);
    if (same) same.push(route);
    else methods.set(route.name, [route]);
    const key = `${route.method} ${route.path}`;
    const before = this.byRoute.get(key);
    if (before && before.pool !== route.pool) this.shared.add(key);
    this.byRoute.set(key, route);
  }

  /** A pool without routes yet (tests, `BalancerService.run` pools). */
  addPool(pool: ResolvedPool): void {
    this.pools.set(pool.key, pool);
  }

  /**
   * The watched route a request is on. `routePath(req)` is asked only when the method serves
   * several watched paths or the handler lost its name: the path pattern as the adapter matched
   * it (a function and its argument rather than a closure: nothing is allocated per request).
   */
  forRequest<R>(
    controller: object,
    handlerName: string,
    req: R,
    routePath: (req: R) => string | undefined,
    method: string,
  ): WatchedRoute | undefined {
    const methods = this.byClass.get(controller);
    if (!methods) return undefined;
    const candidates = methods.get(handlerName);
    if (candidates?.length === 1) return candidates[0];
    const path = routePath(req);
    return path === undefined ? undefined : this.forRoute(method, path);
  }

  /**
   * The watched route registered for an HTTP method and a path pattern as Nest registered it
   * (global prefix, module path and URI version included: `/v1/items/:id`), or `undefined`;
   * also `undefined` when routes of different pools share that method and path (header or
   * media-type versions): only the handler tells them apart.
   */
  forRoute(method: string, path: string): WatchedRoute | undefined {
    const p = normalizePath(path);
    for (const key of [`${method.toUpperCase()} ${p}`, `ALL ${p}`]) {
      if (this.shared.has(key)) return undefined;
      const route = this.byRoute.get(key);
      if (route) return route;
    }
    return undefined;
  }

  routes(): WatchedRoute[] {
    return [...this.list];
  }

  get(key: string): ResolvedPool | undefined {
    return this.pools.get(key);
  }

  all(): ResolvedPool[] {
    return [...this.pools.values()];
  }
}
