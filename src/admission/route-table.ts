import { Injectable } from '@nestjs/common';
import { normalizePath } from '../config/resolve-options';
import type { ResolvedPool } from './pool-registry';

/** One route the app serves, as route discovery found it: watched (`pool`) or not (`null`). */
export interface RouteEntry {
  method: string;
  /** The served path pattern: global prefix, module path, URI version included. */
  path: string;
  /** The controller class Nest instantiated (`context.getClass()`). */
  controller: object;
  /** Name of the handler method (the prototype property Nest routes to). */
  name: string;
  pool: ResolvedPool | null;
  /** `AdmissionGuard` is on the route (`@Balanced()` that kept its metadata). */
  decorated: boolean;
  /** Served under a host or a header / media-type version: the path alone does not route it. */
  constrained: boolean;
}

/** A watched route: its pool is known. */
export type WatchedRoute = RouteEntry & { pool: ResolvedPool };

/** A request on a watched handler that the table cannot place (admission fails closed). */
export const UNRESOLVED = Symbol('nestjs-balancer.unresolved-route');

/** The watched route a request is on, `null` for a route no pool watches, or `UNRESOLVED`. */
export type Resolution = WatchedRoute | null | typeof UNRESOLVED;

interface HandlerRoutes {
  /** The answer for every request of this handler when it does not depend on the path. */
  single?: WatchedRoute | null;
  byKey: Map<string, RouteEntry>;
}

const key = (method: string, path: string): string =>
  `${method.toUpperCase()} ${normalizePath(path)}`;

/**
 * Every route the app serves, each with its pool or "not watched", built once by route discovery
 * and used by every admission layer: the early hooks ask which pool owns a method and path, the
 * guard and interceptor which route a request's handler (and, for a handler that serves several
 * routes, its matched path) is. A route that is not watched is never placed in a watched pool.
 */
@Injectable()
export class RouteTable {
  private readonly byClass = new Map<object, Map<string, HandlerRoutes>>();
  private readonly byKey = new Map<string, RouteEntry[]>();
  private readonly watchedClasses = new Set<object>();
  private readonly list: RouteEntry[] = [];

  add(entry: RouteEntry): void {
    this.list.push(entry);
    if (entry.pool) this.watchedClasses.add(entry.controller);
    let methods = this.byClass.get(entry.controller);
    if (!methods) this.byClass.set(entry.controller, (methods = new Map()));
    let handler = methods.get(entry.name);
    if (!handler) methods.set(entry.name, (handler = { byKey: new Map() }));
    handler.byKey.set(key(entry.method, entry.path), entry);
    const targets = new Set([...handler.byKey.values()].map((e) => e.pool));
    handler.single = targets.size === 1 ? (watched(entry) ?? null) : undefined;
    const k = key(entry.method, entry.path);
    const same = this.byKey.get(k);
    if (same) same.push(entry);
    else this.byKey.set(k, [entry]);
  }

  /**
   * The route a request is on, from its controller class and handler name (what survives
   * tracing wrappers) and, when the handler serves routes of different pools or its name is not
   * the method's (a renaming wrapper), the path pattern the adapter matched. `routePath(req)` is
   * a function and its argument rather than a closure: nothing is allocated per request.
   */
  resolve<R>(
    controller: object,
    handlerName: string,
    req: R,
    routePath: (req: R) => string | undefined,
    method: string,
  ): Resolution {
    const methods = this.byClass.get(controller);
    if (!methods) return null;
    const handler = methods.get(handlerName);
    if (handler?.single !== undefined) return handler.single;
    const path = routePath(req);
    if (path === undefined) return UNRESOLVED;
    const keys = keysOf(method, path);
    if (handler) {
      for (const k of keys) {
        const entry = handler.byKey.get(k);
        if (entry) return watched(entry) ?? null;
      }
      return UNRESOLVED;
    }
    // The handler's name is not a method of the controller: place it by the matched path among
    // the controller's routes, when they all agree.
    const entries = keys.flatMap((k) => this.byKey.get(k) ?? []);
    const mine = entries.filter((e) => e.controller === controller);
    const pools = new Set(mine.map((e) => e.pool));
    if (pools.size === 1) return watched(mine[0]) ?? null;
    return mine.length === 0 && !this.watchedClasses.has(controller) ? null : UNRESOLVED;
  }

  /**
   * The pool that every route served at `method path` belongs to, or `undefined` when some route
   * there is not watched, routes of different pools share it, or (unless `constraintsRoute`)
   * one of them is served under a host or a header / media-type version: then only the handler
   * that routing picks tells which pool a request is for, and admission waits for routing.
   */
  owner(method: string, path: string, constraintsRoute: boolean): ResolvedPool | undefined {
    const entries = keysOf(method, path).flatMap((k) => this.byKey.get(k) ?? []);
    const first = entries[0]?.pool;
    if (!first) return undefined;
    for (const e of entries) {
      if (e.pool !== first || (!constraintsRoute && e.constrained)) return undefined;
    }
    return first;
  }

  /** Every watched route. */
  watched(): WatchedRoute[] {
    return this.list.filter((e): e is WatchedRoute => e.pool !== null);
  }

  /** Every route, watched or not. */
  all(): RouteEntry[] {
    return [...this.list];
  }
}

function watched(entry: RouteEntry): WatchedRoute | undefined {
  return entry.pool ? (entry as WatchedRoute) : undefined;
}

/** Keys a request of `method` on `path` may be routed by (`@All()`; Express answers HEAD by GET). */
function keysOf(method: string, path: string): string[] {
  const m = method.toUpperCase();
  const keys = [key(m, path), key('ALL', path)];
  if (m === 'HEAD') keys.push(key('GET', path));
  return keys;
}
