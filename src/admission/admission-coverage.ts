import { Inject, Injectable, Logger } from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants';
import { ApplicationConfig } from '@nestjs/core';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { AdmissionGuard } from './admission.guard';
import { AdmissionInterceptor } from './admission.interceptor';
import { isAdmissionWrapper, unadmittedCalls } from './handler-wrapper';
import { PoolRegistry, type WatchedRoute } from './pool-registry';

/** What `/balancer/health` says about admission coverage. */
export interface AdmissionCoverageReport {
  /** Watched routes that do not carry admission (`GET /predict (Api.predict): why`). */
  unprotected: string[];
  /** Requests that reached a watched handler without admission, per route. */
  unadmitted: Record<string, number>;
}

/**
 * Fail loud, never open: after the routes are registered, checks that every watched route
 * really carries admission (a `@Balanced()` route its guard and method wrapper; an
 * `endpoints`-only route the global interceptor) and logs an error naming any it could not
 * protect. Health reports both those and requests that reached a handler without admission.
 */
@Injectable()
export class AdmissionCoverage {
  private readonly logger = new Logger('BalancerModule');
  private unprotected: string[] = [];

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly registry: PoolRegistry,
    private readonly config: ApplicationConfig,
  ) {}

  /** Whether the global interceptor must be registered for the discovered routes. */
  needsInterceptor(): boolean {
    const routes = this.registry.routes();
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
    for (const route of this.registry.routes()) {
      const why = this.gap(route, interceptor);
      if (why) this.unprotected.push(`${describe(route)}: ${why}`);
    }
    for (const line of this.unprotected) {
      this.logger.error(`watched route without admission, requests are NOT capped: ${line}`);
    }
    return [...this.unprotected];
  }

  report(): AdmissionCoverageReport {
    const unadmitted: Record<string, number> = {};
    for (const route of this.registry.routes()) {
      if (!route.decorated) continue;
      const n = unadmittedCalls(handlerOf(route));
      if (n > 0) unadmitted[describe(route)] = n;
    }
    return { unprotected: [...this.unprotected], unadmitted };
  }

  private gap(route: WatchedRoute, interceptor: boolean): string | undefined {
    if (!route.decorated || this.options.admission === 'interceptor') {
      return interceptor ? undefined : 'AdmissionInterceptor is not registered';
    }
    const handler = handlerOf(route);
    if (!isAdmissionWrapper(handler)) return 'the handler is not the @Balanced() method wrapper';
    const guards = [
      ...((Reflect.getMetadata(GUARDS_METADATA, route.controller) as unknown[]) ?? []),
      ...((Reflect.getMetadata(GUARDS_METADATA, handler as object) as unknown[]) ?? []),
    ];
    return guards.includes(AdmissionGuard) ? undefined : 'AdmissionGuard is not on the route';
  }
}

function handlerOf(route: WatchedRoute): unknown {
  return (route.controller as { prototype?: Record<string, unknown> }).prototype?.[route.name];
}

function describe(route: WatchedRoute): string {
  const cls = (route.controller as { name?: string }).name ?? 'controller';
  return `${route.method} ${route.path} (${cls}.${route.name})`;
}
