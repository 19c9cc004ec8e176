import {
  Inject,
  MiddlewareConsumer,
  Module,
  NestModule,
  OnApplicationBootstrap,
  type DynamicModule,
} from '@nestjs/common';
import { ApplicationConfig, DiscoveryModule } from '@nestjs/core';
import { AdmissionCoverage } from '../admission/admission-coverage';
import { AdmissionControl } from '../admission/admission-control';
import { Deadlines } from '../admission/deadlines';
import { AdmissionEvents } from '../admission/admission-events';
import { AdmissionGate } from '../admission/admission-gate';
import { AdmissionGuard } from '../admission/admission.guard';
import { AdmissionInterceptor } from '../admission/admission.interceptor';
import { BalancerService } from '../admission/balancer.service';
import { QueuedBodyBytes } from '../admission/body-budget';
import { EarlyAdmission } from '../admission/early-admission';
import { EarlyAdmissionInstaller } from '../admission/early-admission.installer';
import { createCapacityStore } from '../storage/capacity-store.factory';
import { CapacityStore } from '../storage/capacity-store.interface';
import { PoolRegistry } from '../admission/pool-registry';
import { RouteTable } from '../admission/route-table';
import { UnresolvedRoutes } from '../admission/admission-misses';
import { ProbeTokens } from '../admission/probe-tokens';
import { BalancerAuthGuard } from '../dashboard/basic-auth.guard';
import {
  configureDashboard,
  DASHBOARD_EXPORTS,
  DASHBOARD_IMPORTS,
  DASHBOARD_PROVIDERS,
} from '../dashboard/dashboard.parts';
import { HEALTH_EXPORTS, HEALTH_IMPORTS, HEALTH_PROVIDERS } from '../health/health.parts';
import { PROBE_EXPORTS, PROBE_PROVIDERS } from '../probe/probe.parts';
import { ADAPTIVE_PROVIDERS } from '../adaptive/adaptive.parts';
import { AdaptiveCapacity } from '../adaptive/adaptive-capacity.service';
import { ADAPTIVE_STATUS } from '../admission/adaptive-status';
import type { BalancerModuleOptions } from '../config/balancer-options';
import {
  BALANCER_OPTIONS,
  BALANCER_RAW_OPTIONS,
  BALANCER_ROUTES,
} from '../config/balancer.constants';
import { BalancerLifecycle } from './balancer-lifecycle.service';
import {
  BALANCER_ASYNC_OPTIONS_TYPE,
  BalancerConfigurableModule,
} from './balancer.module-definition';
import {
  asyncRoutes,
  balancerControllers,
  checkRoutes,
  syncRoutes,
  type BalancerRoutes,
} from './balancer-routes';
import { BalancerStatsService } from '../admission/balancer-stats.service';
import { resolveBalancerOptions, type ResolvedBalancerOptions } from '../config/resolve-options';
import { RouteDiscovery } from './route-discovery';

/**
 * Admission control, probing, health gating and the dashboard for compute-heavy routes.
 *
 * ```ts
 * BalancerModule.forRoot({ endpoints: { '/predict': { method: 'POST', body: { input: 'x' } } } })
 * BalancerModule.forRoot('balancer.yml')
 * BalancerModule.forRootAsync({ inject: [ConfigService], useFactory: (c) => c.get('balancer') })
 * ```
 * Global by default. `@Balanced()` routes carry `AdmissionGuard` and a method wrapper from the
 * decorator; routes watched only through `endpoints` (and, with `admission: 'interceptor'`, all
 * watched routes) are admitted by `AdmissionInterceptor`, registered as a global interceptor
 * only when such routes exist. Apps add nothing.
 */
@Module({
  imports: [DiscoveryModule, ...HEALTH_IMPORTS, ...DASHBOARD_IMPORTS],
  providers: [
    {
      provide: BALANCER_OPTIONS,
      inject: [BALANCER_RAW_OPTIONS, BALANCER_ROUTES],
      useFactory: (raw: BalancerModuleOptions, routes: BalancerRoutes) =>
        checkRoutes(resolveBalancerOptions(raw), raw, routes),
    },
    {
      provide: CapacityStore,
      inject: [BALANCER_OPTIONS],
      useFactory: (options: ResolvedBalancerOptions) => createCapacityStore(options),
    },
    PoolRegistry,
    RouteTable,
    UnresolvedRoutes,
    AdmissionGate,
    AdmissionEvents,
    ProbeTokens,
    RouteDiscovery,
    BalancerLifecycle,
    BalancerStatsService,
    BalancerAuthGuard,
    AdmissionControl,
    Deadlines,
    AdmissionInterceptor,
    AdmissionGuard,
    BalancerService,
    QueuedBodyBytes,
    EarlyAdmission,
    EarlyAdmissionInstaller,
    AdmissionCoverage,
    ...PROBE_PROVIDERS,
    ...ADAPTIVE_PROVIDERS,
    { provide: ADAPTIVE_STATUS, useExisting: AdaptiveCapacity },
    ...HEALTH_PROVIDERS,
    ...DASHBOARD_PROVIDERS,
  ],
  exports: [
    BALANCER_OPTIONS,
    CapacityStore,
    AdmissionGate,
    AdmissionControl,
    AdmissionInterceptor,
    AdmissionGuard,
    BalancerService,
    AdmissionCoverage,
    BalancerStatsService,
    PoolRegistry,
    ...PROBE_EXPORTS,
    ...HEALTH_EXPORTS,
    ...DASHBOARD_EXPORTS,
  ],
})
export class BalancerModule
  extends BalancerConfigurableModule
  implements NestModule, OnApplicationBootstrap
{
  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly discovery: RouteDiscovery,
    private readonly coverage: AdmissionCoverage,
    private readonly interceptor: AdmissionInterceptor,
    private readonly early: EarlyAdmissionInstaller,
    private readonly appConfig: ApplicationConfig,
  ) {
    super();
  }

  private configured = false;

  /** Options object, or the path of a `balancer.yml` (the fastapi-balancer format). */
  static override forRoot(
    options: BalancerModuleOptions & { isGlobal?: boolean } = {},
  ): DynamicModule {
    const routes = syncRoutes(options);
    if (typeof options === 'string') {
      // The builder copies option objects key by key, which would shred a string.
      return withRoutes(
        {
          module: BalancerModule,
          global: true,
          providers: [{ provide: BALANCER_RAW_OPTIONS, useValue: options }],
        },
        routes,
      );
    }
    return withRoutes(super.forRoot(options), routes);
  }

  /**
   * Options from a factory (e.g. `ConfigService`); the factory may return a YAML path too.
   * `routePrefix` and `routeMetadata` go here, not in the factory's result: Nest registers the
   * balancer's routes before the factory runs.
   */
  static override forRootAsync(
    options: typeof BALANCER_ASYNC_OPTIONS_TYPE & {
      routePrefix?: string;
      routeMetadata?: Record<string, unknown>;
    },
  ): DynamicModule {
    const { routePrefix, routeMetadata, ...rest } = options;
    return withRoutes(super.forRootAsync(rest), asyncRoutes(routePrefix, routeMetadata));
  }

  /**
   * Runs before Nest registers the routes (and reads its global interceptors): discover the
   * watched routes, and register `AdmissionInterceptor` globally (the public
   * `useGlobalInterceptors` mechanism) only when some watched route needs it.
   */
  configure(consumer: MiddlewareConsumer): void {
    this.discovery.discover();
    this.configured = true;
    if (this.coverage.needsInterceptor()) this.appConfig.addGlobalInterceptor(this.interceptor);
    // Admission before the body is read, where the server allows it (before Nest middleware).
    this.early.install();
    configureDashboard(consumer, this.options);
  }

  /** After the routes are registered: every watched route must carry admission (fail loud). */
  onApplicationBootstrap(): void {
    // No HTTP routes in an application context (configure() never ran): nothing to check.
    if (this.configured) this.coverage.check();
  }
}

/** The balancer's own controllers, under the prefix this definition fixed. */
function withRoutes(definition: DynamicModule, routes: BalancerRoutes): DynamicModule {
  return {
    ...definition,
    controllers: [...(definition.controllers ?? []), ...balancerControllers(routes)],
    providers: [...(definition.providers ?? []), { provide: BALANCER_ROUTES, useValue: routes }],
  };
}
