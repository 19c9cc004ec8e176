import { Controller, SetMetadata, type Type } from '@nestjs/common';
import { BalancerConfigError } from '../config/balancer-config.error';
import type { BalancerModuleOptions } from '../config/balancer-options';
import { BALANCER_ROUTE_METADATA } from '../config/balancer.constants';
import {
  DEFAULTS,
  normalizeRoutePrefix,
  type ResolvedBalancerOptions,
} from '../config/resolve-options';
import { readBalancerYaml } from '../config/yaml-config.loader';
import { DASHBOARD_CONTROLLERS } from '../dashboard/dashboard.parts';
import { HEALTH_CONTROLLERS } from '../health/health.parts';
import { BalancerStatsController } from './balancer-stats.controller';

/**
 * Where the balancer's own routes live, fixed when `forRoot*` builds the module: Nest reads a
 * controller's path from its class when it registers routes, which happens before a
 * `forRootAsync` factory has run.
 */
export interface BalancerRoutes {
  prefix: string;
  metadata: Record<string, unknown>;
  /** Given to `forRootAsync()` (the factory may not move them). */
  async: boolean;
}

/**
 * One subclass per controller of the balancer, declared with `@Controller(prefix)` and the
 * route metadata, for this module definition. New classes, so two apps in one process (tests)
 * can use different prefixes; the handlers and guards are inherited unchanged.
 */
export function balancerControllers(routes: BalancerRoutes): Type[] {
  return [BalancerStatsController, ...HEALTH_CONTROLLERS, ...DASHBOARD_CONTROLLERS].map((base) => {
    const routed = { [base.name]: class extends base {} }[base.name] as Type;
    Controller(routes.prefix)(routed);
    SetMetadata(BALANCER_ROUTE_METADATA, true)(routed);
    for (const [key, value] of Object.entries(routes.metadata)) SetMetadata(key, value)(routed);
    return routed;
  });
}

/** The routes of a synchronous `forRoot` (options object, or the YAML file's `route_prefix`). */
export function syncRoutes(options: BalancerModuleOptions): BalancerRoutes {
  let given: unknown;
  let metadata: unknown;
  if (typeof options === 'string') {
    try {
      ({ routePrefix: given, routeMetadata: metadata } = readBalancerYaml(options).options);
    } catch {
      // An unreadable file is reported, with its reason, when the options are resolved.
    }
  } else {
    ({ routePrefix: given, routeMetadata: metadata } = options);
  }
  return asyncRoutes(given, metadata, false);
}

export function asyncRoutes(prefix: unknown, metadata: unknown, async = true): BalancerRoutes {
  return {
    // A malformed prefix is reported when the options are validated; register the default.
    prefix:
      typeof prefix === 'string' && normalizeRoutePrefix(prefix) !== ''
        ? normalizeRoutePrefix(prefix)
        : DEFAULTS.routePrefix,
    metadata:
      metadata !== null && typeof metadata === 'object'
        ? (metadata as Record<string, unknown>)
        : {},
    async,
  };
}

/** A `forRootAsync` factory that names another prefix or metadata is a startup error. */
export function checkRoutes(
  resolved: ResolvedBalancerOptions,
  raw: BalancerModuleOptions,
  routes: BalancerRoutes,
): ResolvedBalancerOptions {
  const problems: string[] = [];
  if (resolved.routePrefix !== routes.prefix) {
    problems.push(
      `routePrefix "${resolved.routePrefix}" comes too late: the balancer's routes are registered ` +
        `under "${routes.prefix}" before the options factory runs; pass ` +
        `forRootAsync({ routePrefix: '${resolved.routePrefix}', ... })`,
    );
  }
  if (routes.async && typeof raw === 'object' && raw?.routeMetadata !== undefined) {
    problems.push(
      'routeMetadata comes too late from the options factory; pass forRootAsync({ routeMetadata, ... })',
    );
  }
  if (problems.length > 0) throw new BalancerConfigError(resolved.source, problems);
  return resolved;
}
