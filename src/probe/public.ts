// Public names of the probe feature, re-exported by src/index.ts.
export { ProbeService } from './probe.service';
export { ProbeRunner } from './probe-runner.service';
export {
  BenchBalancer,
  type BenchBalancerOptions,
  type BenchReport,
  type BenchEndpointResult,
} from './bench-balancer';
export {
  ProbeError,
  ProbeAbortedError,
  ProbeBudgetError,
  ProbeDeadlineError,
  ProbeLevelOneError,
  ProbeLoadShortError,
  ProbeNoPathError,
  ProbeRejectedError,
  ProbeUnreachableError,
  type ProbeErrorReason,
} from './probe.errors';
export type {
  LevelFailure,
  LevelPhase,
  LevelStats,
  ProbeResult,
  ProbeRunOptions,
  ProbeSettings,
  ProbeTarget,
  StopReason,
} from './probe.types';
