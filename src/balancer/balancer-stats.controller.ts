import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import { BalancerAuthGuard } from '../dashboard/basic-auth.guard';
import { BalancerStatsService, type BalancerStats } from '../admission/balancer-stats.service';

/** `GET /balancer/stats`: capacity, in-flight, queue and counters per pool. */
@Controller('balancer')
@UseGuards(BalancerAuthGuard)
export class BalancerStatsController {
  constructor(private readonly stats: BalancerStatsService) {}

  @Get('stats')
  @Header('Cache-Control', 'no-store')
  get(): Promise<BalancerStats> {
    return this.stats.snapshot();
  }
}
