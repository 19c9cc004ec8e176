import type { DynamicModule, Provider, Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BalancerHealthController } from './balancer-health.controller';
import { BalancerHealthIndicator } from './balancer-health.indicator';
import { HealthGateService } from './health-gate.service';

/**
 * Imports, providers and controllers of the health feature, registered by BalancerModule.
 * Terminus is imported with its logger off: the gate logs state changes itself, and a failing
 * check every few seconds must not fill the host's log with Terminus error dumps.
 */
export const HEALTH_IMPORTS: Array<Type | DynamicModule> = [
  TerminusModule.forRoot({ logger: false }),
];
export const HEALTH_PROVIDERS: Provider[] = [HealthGateService, BalancerHealthIndicator];
export const HEALTH_CONTROLLERS: Type[] = [BalancerHealthController];
/** Exported to the application (e.g. `BalancerHealthIndicator`). */
export const HEALTH_EXPORTS: Array<Type | string | symbol> = [BalancerHealthIndicator];
