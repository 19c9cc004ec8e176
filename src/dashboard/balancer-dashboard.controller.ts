import { Controller, Get, Header, NotFoundException, Query, Res, UseGuards } from '@nestjs/common';
import { BalancerMetrics } from './balancer-metrics.service';
import { BalancerAuthGuard } from './basic-auth.guard';
import { StatsHistory, type BalancerHistory } from './stats-history.service';

/** Express `Response` and Fastify `FastifyReply` both have `header(name, value)`. */
interface HeaderSetter {
  header(name: string, value: string): unknown;
}

/** `GET /<routePrefix>/history`: the samples behind the dashboard's charts. */
@Controller()
@UseGuards(BalancerAuthGuard)
export class BalancerHistoryController {
  constructor(private readonly history: StatsHistory) {}

  /** `?since=<unix seconds>` returns only newer samples (the dashboard polls with it). */
  @Get('history')
  @Header('Cache-Control', 'no-store')
  get(@Query('since') since?: string): BalancerHistory {
    if (!this.history.enabled) throw new NotFoundException('The balancer dashboard is disabled');
    const n = since === undefined ? NaN : Number(since);
    return this.history.history(Number.isFinite(n) ? n : undefined);
  }
}

/** `GET /<routePrefix>/metrics`: Prometheus text. Mounted only when prom-client is installed. */
@Controller()
@UseGuards(BalancerAuthGuard)
export class BalancerMetricsController {
  constructor(private readonly metrics: BalancerMetrics) {}

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async get(@Res({ passthrough: true }) res: HeaderSetter): Promise<string> {
    const out = await this.metrics.render();
    if (!out) throw new NotFoundException('Balancer metrics are not served here (metrics)');
    res.header('Content-Type', out.contentType);
    return out.text;
  }
}
