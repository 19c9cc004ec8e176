// Public names of the dashboard feature, re-exported by src/index.ts.
export { BalancerAuthGuard } from './basic-auth.guard';
export { BalancerMetrics } from './balancer-metrics.service';
export type { BalancerHistory, PoolHistory } from './stats-history.service';
