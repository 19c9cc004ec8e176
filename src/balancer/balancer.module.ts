import { Inject, MiddlewareConsumer, Module, NestModule, type DynamicModule } from '@nestjs/common';
import { GUARDS_METADATA, INTERCEPTORS_METADATA } from '@nestjs/common/constants';
import { DiscoveryModule } from '@nestjs/core';
import { AdmissionControl } from '../admission/admission-control';
import { AdmissionEvents } from '../admission/admission-events';
import { AdmissionGate } from '../admission/admission-gate';
import { wrapHandler } from '../admission/admission-handler';
import { AdmissionGuard } from '../admission/admission.guard';
import { AdmissionInterceptor } from '../admission/admission.interceptor';
import { createCapacityStore } from '../storage/capacity-store.factory';
import { CapacityStore } from '../storage/capacity-store.interface';
import { PoolRegistry } from '../admission/pool-registry';
import { ProbeSecret } from '../admission/probe-secret';
import { BalancerAuthGuard } from '../dashboard/basic-auth.guard';
import {
  configureDashboard,
  DASHBOARD_CONTROLLERS,
  DASHBOARD_EXPORTS,
  DASHBOARD_IMPORTS,
  DASHBOARD_PROVIDERS,
} from '../dashboard/dashboard.parts';
import {
  HEALTH_CONTROLLERS,
  HEALTH_EXPORTS,
  HEALTH_IMPORTS,
  HEALTH_PROVIDERS,
} from '../health/health.parts';
import { PROBE_PROVIDERS } from '../probe/probe.parts';
import { ADAPTIVE_PROVIDERS } from '../adaptive/adaptive.parts';
import type { BalancerModuleOptions } from '../config/balancer-options';
import { BALANCER_OPTIONS, BALANCER_RAW_OPTIONS } from '../config/balancer.constants';
import { BalancerLifecycle } from './balancer-lifecycle.service';
import {
  BALANCER_ASYNC_OPTIONS_TYPE,
  BalancerConfigurableModule,
} from './balancer.module-definition';
import { BalancerStatsController } from './balancer-stats.controller';
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
  controllers: [BalancerStatsController, ...HEALTH_CONTROLLERS, ...DASHBOARD_CONTROLLERS],
  providers: [
    {
      provide: BALANCER_OPTIONS,
      inject: [BALANCER_RAW_OPTIONS],
      useFactory: (raw: BalancerModuleOptions) => resolveBalancerOptions(raw),
    },
    {
      provide: CapacityStore,
      inject: [BALANCER_OPTIONS],
      useFactory: (options: ResolvedBalancerOptions) => createCapacityStore(options),
    },
    PoolRegistry,
    AdmissionGate,
    AdmissionEvents,
    ProbeSecret,
    RouteDiscovery,
    BalancerLifecycle,
    BalancerStatsService,
    BalancerAuthGuard,
    AdmissionControl,
    AdmissionInterceptor,
    AdmissionGuard,
    ...PROBE_PROVIDERS,
    ...ADAPTIVE_PROVIDERS,
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
  ) {
    super();
  }

  /** Options object, or the path of a `balancer.yml` (the fastapi-balancer format). */
  static override forRoot(
    options: BalancerModuleOptions & { isGlobal?: boolean } = {},
  ): DynamicModule {
    if (typeof options === 'string') {
      // The builder copies option objects key by key, which would shred a string.
      return {
        module: BalancerModule,
        global: true,
        providers: [{ provide: BALANCER_RAW_OPTIONS, useValue: options }],
      };
    }
    return super.forRoot(options);
  }

  /** Options from a factory (e.g. `ConfigService`); the factory may return a YAML path too. */
  static override forRootAsync(options: typeof BALANCER_ASYNC_OPTIONS_TYPE): DynamicModule {
    return super.forRootAsync(options);
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
    configureDashboard(consumer, this.options);
  }
}
