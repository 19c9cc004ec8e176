import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { BalancerHealthIndicator } from './balancer-health.indicator';

/**
 * `GET /<routePrefix>/health` (registered under its prefix by `BalancerModule.forRoot*`):
 * readiness of this process in the Terminus format, 200 when ready and 503 otherwise. Unauthenticated on purpose, like any readiness probe: it names states and pool
 * paths, never numbers of other apps or credentials.
 */
@Controller()
export class BalancerHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly balancer: BalancerHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.balancer.isHealthy('balancer')]);
  }
}
