import { Inject, MiddlewareConsumer, Module, NestModule, type DynamicModule } from '@nestjs/common';
import { GUARDS_METADATA, INTERCEPTORS_METADATA } from '@nestjs/common/constants';
import { DiscoveryModule } from '@nestjs/core';
import { AdmissionControl } from '../admission/admission-control';
import { AdmissionEvents } from '../admission/admission-events';
import { AdmissionGate } from '../admission/admission-gate';
import { wrapHandler } from '../admission/admission-handler';
import { AdmissionGuard } from '../admission/admission.guard';
import { AdmissionInterceptor } from '../admission/admission.interceptor';
import { BalancerService } from '../admission/balancer.service';
import { QueuedBodyBytes } from '../admission/body-budget';
import { EarlyAdmission } from '../admission/early-admission';
import { EarlyAdmissionInstaller } from '../admission/early-admission.installer';
import { createCapacityStore } from '../storage/capacity-store.factory';
import { CapacityStore } from '../storage/capacity-store.interface';
import { PoolRegistry } from '../admission/pool-registry';
import { ProbeTokens } from '../admission/probe-tokens';
import { BalancerAuthGuard } from '../dashboard/basic-auth.guard';
import {
  configureDashboard,
  DASHBOARD_EXPORTS,
  DASHBOARD_IMPORTS,
  DASHBOARD_PROVIDERS,
} from '../dashboard/dashboard.parts';
import { HEALTH_EXPORTS, HEALTH_IMPORTS, HEALTH_PROVIDERS } from '../health/health.parts';
import { PROBE_PROVIDERS } from '../probe/probe.parts';
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
import { BalancerStatsService } from './balancer-stats.service';
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
 * Global by default. Puts `AdmissionGuard` (or, with `admission: 'interceptor'`,
 * `AdmissionInterceptor`) on the watched routes itself (apps add nothing).
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
    AdmissionGate,
    AdmissionEvents,
    ProbeTokens,
    RouteDiscovery,
    BalancerLifecycle,
    BalancerStatsService,
    BalancerAuthGuard,
    AdmissionControl,
    AdmissionInterceptor,
    AdmissionGuard,
    BalancerService,
    QueuedBodyBytes,
    EarlyAdmission,
    EarlyAdmissionInstaller,
    ...PROBE_PROVIDERS,
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
    BalancerStatsService,
    PoolRegistry,
    ...HEALTH_EXPORTS,
    ...DASHBOARD_EXPORTS,
  ],
})
export class BalancerModule extends BalancerConfigurableModule implements NestModule {
  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly discovery: RouteDiscovery,
    private readonly registry: PoolRegistry,
    private readonly interceptor: AdmissionInterceptor,
    private readonly guard: AdmissionGuard,
    private readonly early: EarlyAdmissionInstaller,
  ) {
    super();
  }

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
   * Runs before Nest registers the routes: discover the watched ones and put admission on
   * exactly those handlers. Unwatched routes then carry nothing at all.
   *
   * `admission: 'guard'` (default): wrap the handler on its prototype (so we know when it runs)
   * and append `AdmissionGuard` to the wrapper's guards, after the app's own. Nest's guard step
   * costs a route far less than its interceptor pipeline. `'interceptor'`: `AdmissionInterceptor`
   * first among the handler's interceptors.
   */
  configure(consumer: MiddlewareConsumer): void {
    this.discovery.discover();
    for (const site of this.registry.sites()) {
      // Nest reads this metadata once, when it registers the route. Another app in the same
      // process (tests) may have left its own instance on a shared controller class: replace it.
      const fn =
        this.options.admission === 'guard' ? wrapHandler(site) : (site.proto[site.name] as object);
      const interceptors = (
        (Reflect.getMetadata(INTERCEPTORS_METADATA, fn) as unknown[]) ?? []
      ).filter((i) => !(i instanceof AdmissionInterceptor));
      const guards = ((Reflect.getMetadata(GUARDS_METADATA, fn) as unknown[]) ?? []).filter(
        (g) => !(g instanceof AdmissionGuard),
      );
      if (this.options.admission === 'guard') {
        this.registry.alias(fn);
        Reflect.defineMetadata(INTERCEPTORS_METADATA, interceptors, fn);
        Reflect.defineMetadata(GUARDS_METADATA, [...guards, this.guard], fn);
      } else {
        Reflect.defineMetadata(INTERCEPTORS_METADATA, [this.interceptor, ...interceptors], fn);
        Reflect.defineMetadata(GUARDS_METADATA, guards, fn);
      }
    }
    // Admission before the body is read, where the server allows it (before Nest middleware).
    this.early.install();
    configureDashboard(consumer, this.options);
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
