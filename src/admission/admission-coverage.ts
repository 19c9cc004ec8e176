import { Inject, Injectable, Logger } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { AdmissionInterceptor } from './admission.interceptor';
import { unadmittedCounts, UnresolvedRoutes } from './admission-misses';
import { EarlyAdmissionInstaller } from './early-admission.installer';
import { RouteTable, type WatchedRoute } from './route-table';

/** What `/balancer/health` says about admission coverage. */
export interface AdmissionCoverageReport {
  /** Watched routes that do not carry admission (`GET /predict (Api.predict): why`). */
  unprotected: string[];
  /** Requests that reached a watched handler without admission, per handler (`Api.predict`). */
  unadmitted: Record<string, number>;
  /** Requests on watched handlers the route table could not place (answered 503), per handler. */
  unresolved: Record<string, number>;
}

/**
 * Fail loud, never open: after the routes are registered, checks that every watched route
 * really carries admission (a `@Balanced()` route `AdmissionGuard`, found in the route's guard
 * metadata; any other watched route the global interceptor) and, on Fastify, that the server
 * registered it at the path the route table computed. Logs an error naming any route it could
 * not protect. Health reports those, requests that reached a handler without admission, and
 * requests that could not be placed.
 */
@Injectable()
export class AdmissionCoverage {
  private readonly logger = new Logger('BalancerModule');
  private unprotected: string[] = [];

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly table: RouteTable,
    private readonly config: ApplicationConfig,
    private readonly early: EarlyAdmissionInstaller,
    private readonly misses: UnresolvedRoutes,
  ) {}

  /** Whether the global interceptor must be registered for the discovered routes. */
  needsInterceptor(): boolean {
    const routes = this.table.watched();
    return this.options.admission === 'interceptor'
      ? routes.length > 0
      : routes.some((r) => !r.decorated);
  }

  /** Check every watched route; logs an error per unprotected route and returns them. */
  check(): string[] {
    const interceptor = this.config
      .getGlobalInterceptors()
      .some((i) => i instanceof AdmissionInterceptor);
    this.unprotected = [];
    const routes = this.table.watched();
    for (const route of routes) {
      if ((!route.decorated || this.options.admission === 'interceptor') && !interceptor) {
        this.unprotected.push(`${describe(route)}: AdmissionInterceptor is not registered`);
      }
    }
    for (const missing of this.early.unregistered(routes) ?? []) {
      this.unprotected.push(
        `${missing}: the server registered no route at this path (the route table computed it)`,
      );
    }
    for (const line of this.unprotected) {
      this.logger.error(`watched route without admission, requests are NOT capped: ${line}`);
    }
    return [...this.unprotected];
  }

  report(): AdmissionCoverageReport {
    return {
      unprotected: [...this.unprotected],
      unadmitted: unadmittedCounts(),
      unresolved: this.misses.report(),
    };
  }
}

function describe(route: WatchedRoute): string {
  const cls = (route.controller as { name?: string }).name ?? 'controller';
  return `${route.method} ${route.path} (${cls}.${route.name})`;
}
