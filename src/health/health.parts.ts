import type { DynamicModule, Provider, Type } from '@nestjs/common';

/** Imports, providers and controllers of the health feature, registered by BalancerModule. */
export const HEALTH_IMPORTS: Array<Type | DynamicModule> = [];
export const HEALTH_PROVIDERS: Provider[] = [];
export const HEALTH_CONTROLLERS: Type[] = [];
/** Exported to the application (e.g. `BalancerHealthIndicator`). */
export const HEALTH_EXPORTS: Array<Type | string | symbol> = [];
