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
import { AdmissionEvents } from '../admission/admission-events';
import { AdmissionGate } from '../admission/admission-gate';
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
import type { BalancerModuleOptions } from '../config/balancer-options';
import { BALANCER_OPTIONS, BALANCER_RAW_OPTIONS } from '../config/balancer.constants';
import { BalancerLifecycle } from './balancer-lifecycle.service';
import {
  BALANCER_ASYNC_OPTIONS_TYPE,
  BalancerConfigurableModule,
} from './balancer.module-definition';
import { BalancerStatsController } from './balancer-stats.controller';
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
    AdmissionCoverage,
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
    AdmissionCoverage,
    BalancerStatsService,
    PoolRegistry,
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
    private readonly appConfig: ApplicationConfig,
  ) {
    super();
  }

  private configured = false;

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
   * Runs before Nest registers the routes (and reads its global interceptors): discover the
   * watched routes, and register `AdmissionInterceptor` globally (the public
   * `useGlobalInterceptors` mechanism) only when some watched route needs it.
   */
  configure(consumer: MiddlewareConsumer): void {
    this.discovery.discover();
    this.configured = true;
    if (this.coverage.needsInterceptor()) this.appConfig.addGlobalInterceptor(this.interceptor);
    configureDashboard(consumer, this.options);
  }

  /** After the routes are registered: every watched route must carry admission (fail loud). */
  onApplicationBootstrap(): void {
    // No HTTP routes in an application context (configure() never ran): nothing to check.
    if (this.configured) this.coverage.check();
  }
}
