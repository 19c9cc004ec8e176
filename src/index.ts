// Public API of nestjs-balancer. Nothing else is exported on purpose.
export { BalancerModule } from './balancer/balancer.module';
export { Balanced, type BalancedOptions } from './admission/balanced.decorator';
export {
  AdaptiveOptions,
  BalancerOptions,
  EndpointOptions,
  EndpointProbeOptions,
  MetricsOptions,
  ProbeTuningOptions,
  StorageOptions,
  UiOptions,
  type BalancerModuleOptions,
  type DeadlineFunction,
  type MetricsRegistry,
} from './config/balancer-options';
export { BalancerConfigError } from './config/balancer-config.error';
export { loadBalancerConfig } from './config/load-balancer-config';
export { BALANCER_OPTIONS, BALANCER_ROUTE_METADATA } from './config/balancer.constants';
export type { ResolvedBalancerOptions } from './config/resolve-options';
export {
  BalancerStatsService,
  type BalancerStats,
  type EndpointStats,
} from './admission/balancer-stats.service';
export { AdmissionInterceptor } from './admission/admission.interceptor';
export { AdmissionGuard } from './admission/admission.guard';
export { AdmissionGate } from './admission/admission-gate';
export { LeaseSignal } from './admission/lease-signal.decorator';
export { CostReservation } from './admission/cost-reservation.decorator';
export { InvalidCostError, MAX_COST } from './storage/cost-units';
export type { CostFunction } from './config/cost-options';
export { LeaseLostError } from './storage/lease-abort';
export { DeadlineSignal } from './admission/deadline-signal.decorator';
export { DeadlineExceededError } from './admission/request-deadline';
export {
  BalancerPoolNotFoundError,
  BalancerService,
  type BalancerRunOptions,
} from './admission/balancer.service';
export {
  BalancerDeadlineException,
  BalancerInvalidCostException,
  BalancerQueueTimeoutException,
  BalancerRejection,
  BalancerUnavailableException,
} from './admission/admission.exceptions';
export {
  CapacityStore,
  type AcquireOptions,
  type AcquireResult,
  type CapacitySource,
  type Lease,
  type PoolCounters,
  type PoolSnapshot,
  type ProbeLock,
  type ProbeTokenEntry,
  type PublishedProbeToken,
  type RejectReason,
  type StoredProbeResult,
  type TenantCount,
  type TenantSnapshot,
} from './storage/capacity-store.interface';
export { MemoryCapacityStore } from './storage/memory-capacity.store';
export * from './probe/public';
export * from './health/public';
export * from './dashboard/public';
