// Public names of the health feature, re-exported by src/index.ts.
export {
  BalancerHealthIndicator,
  type BalancerPoolReadiness,
  type BalancerReadiness,
  type BalancerReadinessState,
} from './balancer-health.indicator';
