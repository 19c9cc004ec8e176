import { Controller, Get, Header, Inject, NotFoundException, UseGuards } from '@nestjs/common';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { BalancerAuthGuard } from '../dashboard/basic-auth.guard';
import { BalancerStatsService, type BalancerStats } from '../admission/balancer-stats.service';

/**
 * `GET /<routePrefix>/stats`: capacity, in-flight, queue and counters per pool. Registered under
 * its prefix by `BalancerModule.forRoot*` (see `balancer-routes.ts`).
 */
@Controller()
@UseGuards(BalancerAuthGuard)
export class BalancerStatsController {
  constructor(
    private readonly stats: BalancerStatsService,
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
  ) {}

  @Get('stats')
  @Header('Cache-Control', 'no-store')
  get(): Promise<BalancerStats> {
    if (!this.options.stats)
      throw new NotFoundException('Balancer stats are disabled (stats: false)');
    return this.stats.snapshot();
  }
}
