import type { ProbeSlots } from './interim-admission';

/** What the probe sends: one request shape, repeated at rising concurrency. */
export interface ProbeTarget {
  /** Absolute URL of the endpoint, e.g. `http://127.0.0.1:3000/predict`. */
  url: string;
  /** @default 'GET' */
  method?: string;
  headers?: Record<string, string>;
  /** Objects are sent as JSON (with `content-type: application/json` unless set). */
  body?: unknown;
  /** Connect through this Unix socket instead of TCP (the host of `url` is then only a label). */
  socketPath?: string;
  /** Accept self-signed certificates (used for the app's own HTTPS server over loopback). */
  insecureTls?: boolean;
}

/** How one probe decides and how long it may take. Every field has a default (see PARAMS). */
export interface ProbeSettings {
  /** A level fails when its error rate exceeds this fraction. @default 0.05 */
  errorThreshold: number;
  /**
   * Absolute latency limit: a level fails when its p99 exceeds this many milliseconds.
   * `undefined` (the default): the relative rule, `latencyFactor` x the unloaded p50 measured
   * at level 1, at least `latencyFloorMs`.
   */
  latencyThresholdMs: number | undefined;
  /** Relative rule: the limit is this many times the unloaded p50 (level 1). @default 4 */
  latencyFactor: number;
  /** Relative rule: the limit is never below this many ms. @default 1000 */
  latencyFloorMs: number;
  /**
   * Time budget of the whole probe, ms: when it runs out, the level in progress is abandoned
   * and the capacity is the largest level proven within the limits (stop reason `deadline`).
   * @default 120000
   */
  maxDurationMs: number;
  /**
   * A level whose expected latency is at least this many ms is paced by latency (see
   * `LevelStats.slow`). @default 500
   */
  slowLatencyMs: number;
  /** Unmeasured load at the start of each level, ms: the most, see `warmupLatencies`. */
  warmupMs: number;
  /**
   * A fast level's warm-up lasts this many expected latencies (the mean of the level measured
   * below it), at least 50 ms and at most `warmupMs`. 0: always `warmupMs`.
   */
  warmupLatencies: number;
  /** Measured window of each level, ms. */
  levelDurationMs: number;
  /** Fewest measured responses per level. */
  minSamples: number;
  /** Highest concurrency tried. */
  maxConcurrency: number;
  /** Most requests the whole probe may send (warm-up and repeats included). */
  maxRequests: number;
  /**
   * A request still running after this many ms is aborted and counted as an error.
   * `undefined`: 5 x the level's latency limit (level 1 under the relative rule: `maxDurationMs`).
   */
  requestTimeoutMs: number | undefined;
  /** Stop stepping up when doubling concurrency no longer raises throughput. */
  stopAtKnee: boolean;
  /** Relative throughput gain per doubling below which the knee is reached. */
  kneeMinGain: number;
  /**
   * The capacity is the smallest measured concurrency whose throughput reaches this share of
   * the peak throughput of the probe (within the error and latency limits).
   */
  throughputShare: number;
  /**
   * A level's warm-up and measured window each last at least this many of the level's own mean
   * latencies (on top of `warmupMs` / `levelDurationMs`), so a slow endpoint's throughput
   * reading spans many waves of completions.
   */
  levelLatencies: number;
}

/** Why a level did not pass. */
export type LevelFailure = 'errors' | 'latency';

/** Which part of the search a level belongs to. */
export type LevelPhase = 'step' | 'search' | 'repeat';

/** Measurements of one concurrency level. Latencies in ms, throughput in responses/s. */
export interface LevelStats {
  concurrency: number;
  phase: LevelPhase;
  /** Measured responses (started after the warm-up). */
  requests: number;
  /** Responses during the warm-up (not measured). */
  warmupRequests: number;
  /** Status >= 400, connection errors and timeouts among the measured responses. */
  errors: number;
  /** Of which timeouts (counted at `requestTimeoutMs`). */
  timeouts: number;
  errorRate: number;
  /** Measured responses by status; `error` for connection errors, `timeout` for timeouts. */
  statuses: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  throughputRps: number;
  /**
   * Little's law: throughput x mean latency, the concurrency the server actually saw.
   * Far below `concurrency` means the load generator did not reach its level.
   */
  littleConcurrency: number;
  /** False when `littleConcurrency` is below 80 % of `concurrency`. */
  littleOk: boolean;
  /** Measured window, ms (warm-up excluded). */
  windowMs: number;
  /** Warm-up plus window: how long the level ran, ms. (Absent in reports before 0.2.) */
  durationMs?: number;
  /** Responses completed inside the measured window (the throughput's numerator). */
  completions?: number;
  pass: boolean;
  failure?: LevelFailure;
  /**
   * The level stopped before its window ended because its failure was clear (most responses
   * failed, or its p99 already broke the latency limit).
   */
  early: boolean;
  /** The latency limit this level was judged by, ms (`null`: none, level 1 of the relative rule). */
  limitMs?: number | null;
  /**
   * Paced by latency (a slow endpoint): the warm-up ended at the level's first response, each
   * sender sent one measured request (level 1: two), and throughput is Little's law (requests
   * in flight / mean latency) rather than a count of completions.
   */
  slow?: boolean;
}

/**
 * Why the step-up stopped:
 * - `limit`: a level broke the error or latency limit; binary search found the largest passing level.
 * - `knee`: throughput stopped growing; capacity = peak throughput x lowest latency (the knee).
 * - `max_concurrency`: every level up to `probe.maxConcurrency` passed.
 * - `budget`: `probe.maxRequests` ran out; the capacity is the largest level known to pass.
 * - `deadline`: `probe.maxDurationMs` ran out; the capacity is the largest level known to pass.
 */
export type StopReason = 'limit' | 'knee' | 'max_concurrency' | 'budget' | 'deadline';

/** The outcome of one probe. Also stored (as `report`) with the capacity. */
export interface ProbeResult {
  /** The safe concurrency: what the balancer should admit at once. */
  maxConcurrency: number;
  stopReason: StopReason;
  /** `METHOD url` of the probed endpoint. */
  target: string;
  /** Every level measured, in order (repeats included). */
  levels: LevelStats[];
  /** Knee details when `stopReason` is `knee`. */
  knee?: { peakThroughputRps: number; baseLatencyMs: number; estimate: number };
  /**
   * How the capacity was picked: the peak throughput of the probe, the chosen level's
   * throughput and its share of the peak (`throughputShare` rule).
   */
  choice?: {
    peakThroughputRps: number;
    peakConcurrency: number;
    throughputRps: number;
    throughputShare: number;
    targetShare: number;
  };
  /**
   * The limits applied. `latencyThresholdMs` is the latency limit of the levels above 1 (absolute
   * when set, else `latencyFactor` x `unloadedP50Ms`, at least the floor); `latencyRule` says which.
   */
  thresholds: {
    errorThreshold: number;
    latencyThresholdMs: number;
    latencyRule?: 'absolute' | 'relative';
    /** p50 of level 1 (the endpoint unloaded), ms. */
    unloadedP50Ms?: number;
  };
  /** Requests sent, warm-up and repeats included. */
  requests: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Things worth a look (load generator short of its level, few samples …). */
  warnings: string[];
}

/** Per-call extras for `ProbeService.probe()`. */
export interface ProbeRunOptions extends Partial<ProbeSettings> {
  /** Called after each level, e.g. for a progress line. */
  onLevel?: (level: LevelStats) => void;
  /** Aborts the probe (in-flight requests included); the probe rejects with `ProbeAbortedError`. */
  signal?: AbortSignal;
  /**
   * The startup probe of a pool that keeps serving real requests: every level's requests share
   * the level with them (see `ProbeSlots`). Without it the probe owns the endpoint.
   */
  slots?: ProbeSlots;
}
