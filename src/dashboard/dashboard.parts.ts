import { Logger, RequestMethod } from '@nestjs/common';
import type { DynamicModule, MiddlewareConsumer, Provider, Type } from '@nestjs/common';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import {
  BalancerHistoryController,
  BalancerMetricsController,
} from './balancer-dashboard.controller';
import { BalancerMetrics } from './balancer-metrics.service';
import { DashboardMiddleware } from './dashboard.middleware';
import { OpenRoutesCheck } from './open-routes-check.service';
import { loadPromClient } from './prom-client.loader';
import { StatsHistory } from './stats-history.service';

/** Imports, providers and controllers of the dashboard feature, registered by BalancerModule. */
export const DASHBOARD_IMPORTS: Array<Type | DynamicModule> = [];
export const DASHBOARD_PROVIDERS: Provider[] = [StatsHistory, BalancerMetrics, OpenRoutesCheck];
/** `/<routePrefix>/metrics` exists only when prom-client can be loaded (an optional peer). */
export const DASHBOARD_CONTROLLERS: Type[] = [
  BalancerHistoryController,
  ...(loadPromClient() ? [BalancerMetricsController] : []),
];
/** Exported to the application (merge `BalancerMetrics.registry` into your own). */
export const DASHBOARD_EXPORTS: Array<Type | string | symbol> = [BalancerMetrics];

/**
 * Called from BalancerModule.configure(), after the options are resolved (so `forRootAsync`
 * works): mount the dashboard files under `ui.path`, behind the balancer's Basic auth.
 */
export function configureDashboard(
  consumer: MiddlewareConsumer,
  options: ResolvedBalancerOptions,
): void {
  if (!options.ui.enable) return;
  if (options.ui.path === '/') {
    // The dashboard's files would shadow the application's own routes.
    new Logger('BalancerDashboard').error(
      'ui.path "/" is not allowed: the dashboard is not mounted',
    );
    return;
  }
  consumer
    .apply(DashboardMiddleware)
    .forRoutes(
      { path: options.ui.path, method: RequestMethod.GET },
      { path: `${options.ui.path}/*path`, method: RequestMethod.GET },
    );
}
