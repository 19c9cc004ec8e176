import { Injectable, Logger } from '@nestjs/common';
import { BalancerRejection } from './admission.exceptions';

/**
 * Requests that admission could not handle as it should, counted per route (`Class.method`,
 * never by function identity) and shown by `/balancer/health`; the first of each is logged.
 *
 * - unadmitted: a `@Balanced()` handler ran without admission (no layer admitted it).
 * - unresolved (`UnresolvedRoutes`, one per app): a request on a watched handler that the
 *   route table could not place in a pool; admission fails closed (503 `unresolved_route`), it
 *   is never let through uncounted.
 *
 * The unadmitted count is kept per process: the handler wrapper is put where the class is
 * defined, before any app exists.
 */
const unadmitted = new Map<string, number>();
const logger = new Logger('BalancerModule');

export function countUnadmitted(route: string): void {
  const n = (unadmitted.get(route) ?? 0) + 1;
  unadmitted.set(route, n);
  if (n === 1) {
    logger.error(
      `${route} ran without admission: a watched request reached the handler without ` +
        'passing AdmissionGuard or AdmissionInterceptor (counted in /balancer/health)',
    );
  }
}

/** 503 `unresolved_route`: admission cannot tell which pool the request is for. */
export class UnresolvedRouteException extends BalancerRejection {
  constructor() {
    super(
      'The balancer cannot tell which endpoint this request is for; see /balancer/health',
      503,
      'unresolved_route',
      1,
    );
  }
}

/** Requests per route that ran without admission (`Class.method` -> count). */
export function unadmittedCounts(): Record<string, number> {
  return Object.fromEntries(unadmitted);
}

/** Requests on watched handlers that the route table could not place, for one app. */
@Injectable()
export class UnresolvedRoutes {
  private readonly counts = new Map<string, number>();

  /** Count an unresolved request of `route` and return the 503 that answers it. */
  reject(route: string, method: string, url: string): BalancerRejection {
    const n = (this.counts.get(route) ?? 0) + 1;
    this.counts.set(route, n);
    if (n === 1) {
      logger.error(
        `${method} ${url} on ${route}: the route table places no pool for this request; ` +
          'answered 503 unresolved_route (fail closed, counted in /balancer/health)',
      );
    }
    return new UnresolvedRouteException();
  }

  /** Requests per handler (`Class.method` -> count). */
  report(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
