import type { LoadResult } from '../lib/load';

/** The shapes shared by the parts of `npm run bench:overload` (see bench/overload.ts). */

export type ScenarioName =
  'plain' | 'memory' | 'manual' | 'redis' | 'haproxy' | 'target' | 'redis-target' | 'tenant';

/**
 * `low`: K/4 clients per scenario, interleaved (added latency). `closed`: clients x K closed
 * loop. `open`: rate x K/S Poisson arrivals. `tenants`: the same open-loop rate split between a
 * heavy and a light client group (10 : 1) that send different tenant keys.
 */
export type LoadName = 'low' | 'closed' | 'open' | 'tenants';

export interface OverloadConfig {
  /** K: model slots. */
  k: number;
  /** S: model service time at or below K, ms. */
  s: number;
  /** Measured seconds of each overload phase (closed, open, tenants). */
  durationS: number;
  /** Measured seconds of the low-load phase. */
  lowDurationS: number;
  /** Unmeasured seconds of the same load before each measured window. */
  warmupS: number;
  /** Closed loop: clients = clients x K. */
  clients: number;
  /** Open loop: arrivals per second = rate x K/S. */
  rate: number;
  arrivals: 'poisson' | 'fixed';
  /** Our queue timeout and HAProxy's `timeout queue`, seconds. */
  queueTimeoutS: number;
  /** `queueTargetMs` of the `target` and `redis-target` scenarios; `null`: 2 x S. */
  queueTargetMs: number | null;
  scenarios: ScenarioName[];
  loads: LoadName[];
  /** Each load is run this many times per scenario, interleaved; the median round is shown. */
  rounds: number;
  /**
   * Where the balancer scenarios get their cap: `probe` (the startup probe, as users run it) or
   * `manual` (K by hand: compares the mechanisms alone; on a busy machine the probe measures
   * the box, not the model). The `manual` scenario always uses K.
   */
  capacity: 'probe' | 'manual';
  /** Where overload-latest.{md,json} go; `null`: do not write. */
  outDir: string | null;
  /** Print the fixtures' output. */
  verbose: boolean;
}

export interface ModelStats {
  current: number;
  peak: number;
  served: number;
  failed: number;
}

/** One client group of the `tenants` load. */
export interface TenantGroupResult extends LoadResult {
  /** The tenant key it sends (`x-api-key`). */
  tenant: string;
  /** Arrivals per second of this group. */
  rate: number;
}

export interface PhaseResult extends LoadResult {
  load: LoadName;
  /** 1-based round number. */
  round?: number;
  /** The box's 1-minute load average (`os.loadavg()[0]`) when the phase ended. */
  boxLoad?: number;
  /** The model's own view: highest in-flight, served and failed (500) during the phase. */
  model: ModelStats | null;
  /** Where the CPU went during the phase (warm-up and drain included), % of one core. */
  cpu: {
    wallMs: number;
    /** This process: the load generator. */
    generator: number;
    byFixture: Record<string, number | null>;
    /** The whole machine, % of one core (200 = both cores of a 2-core box busy). */
    machine: number | null;
    /** Machine-wide TCP counter increments (listen-queue overflows, resets): any process's. */
    tcp: Record<string, number> | null;
  };
  /** Each app process's event loop during the phase: utilization and delay. */
  appLoops: Array<{
    elu: number;
    delayP99Ms: number;
    delayMaxMs: number;
    connections: number;
  } | null>;
  /** `tenants` load: each group on its own (the phase's own fields add both up). */
  groups?: { heavy: TenantGroupResult; light: TenantGroupResult };
}

export interface ScenarioResult {
  name: ScenarioName;
  title: string;
  /** Why the scenario did not run. */
  skipped?: string;
  /** Capacity the balancer enforced, and where it came from. */
  capacity?: { value: number | null; source: string; probeState?: string; probeMs?: number | null };
  /** The overload policies the scenario's app was started with. */
  policies?: { queueTargetMs?: number; tenantHeader?: string };
  /** Per load, the median round (what the tables show). */
  phases: PhaseResult[];
  /** Every round of every load, in the order run. */
  rounds: PhaseResult[];
  /** Phases that could not run. */
  errors?: string[];
}

export interface TargetCheck {
  target: string;
  pass: boolean;
  detail: string;
}

/** K/S: what the model serves at best, requests per second. */
export function capacityRate(cfg: OverloadConfig): number {
  return (cfg.k * 1000) / cfg.s;
}

/** The `queueTargetMs` the target scenarios run with. */
export function queueTarget(cfg: OverloadConfig): number {
  return cfg.queueTargetMs ?? 2 * cfg.s;
}
