// Public API of nestjs-balancer. Nothing else is exported on purpose.
export { BalancerModule } from './balancer/balancer.module';
export { Balanced, type BalancedOptions } from './balancer/balanced.decorator';
export {
  BalancerOptions,
  EndpointOptions,
  EndpointProbeOptions,
  ProbeTuningOptions,
  StorageOptions,
  UiOptions,
  type BalancerModuleOptions,
} from './balancer/balancer-options';
export { BalancerConfigError } from './balancer/balancer-config.error';
export { loadBalancerConfig } from './balancer/load-balancer-config';
export { BALANCER_OPTIONS } from './balancer/balancer.constants';
export type { ResolvedBalancerOptions } from './balancer/resolve-options';
export {
  BalancerStatsService,
  type BalancerStats,
  type EndpointStats,
} from './balancer/balancer-stats.service';
export { AdmissionInterceptor } from './admission/admission.interceptor';
export { AdmissionGuard } from './admission/admission.guard';
export { AdmissionGate } from './admission/admission-gate';
export {
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
  type PoolSnapshot,
  type ProbeLock,
  type StoredProbeResult,
} from './admission/capacity-store.interface';
export { MemoryCapacityStore } from './admission/memory-capacity.store';
export * from './probe/public';
export * from './health/public';
export * from './dashboard/public';
