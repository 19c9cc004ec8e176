import type { DynamicModule, MiddlewareConsumer, Provider, Type } from '@nestjs/common';
import type { ResolvedBalancerOptions } from '../balancer/resolve-options';

/** Imports, providers and controllers of the dashboard feature, registered by BalancerModule. */
export const DASHBOARD_IMPORTS: Array<Type | DynamicModule> = [];
export const DASHBOARD_PROVIDERS: Provider[] = [];
export const DASHBOARD_CONTROLLERS: Type[] = [];

/** Called from BalancerModule.configure(): mount middleware that needs the resolved options. */
export function configureDashboard(_consumer: MiddlewareConsumer, _options: ResolvedBalancerOptions): void {}
