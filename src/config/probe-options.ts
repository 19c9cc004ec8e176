import 'reflect-metadata';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
} from 'class-validator';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethodName = (typeof HTTP_METHODS)[number];

/** Probe tuning (`probe`). */
export class ProbeTuningOptions {
  /**
   * Most milliseconds of unmeasured load at each level before measuring (see
   * `warmupLatencies`). @default 300
   */
  @IsOptional()
  @IsInt()
  @Min(0)
  warmupMs?: number;

  /**
   * A level's warm-up lasts this many expected latencies (the mean latency of the level measured
   * below it), at least 50 ms and at most `warmupMs`; 0: always `warmupMs`. @default 3
   */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  warmupLatencies?: number;

  /** Milliseconds each level is held under sustained load. @default 1000 */
  @IsOptional()
  @IsInt()
  @Min(50)
  levelDurationMs?: number;

  /** Fewest measured responses per level; a level runs longer until it has them. @default 20 */
  @IsOptional()
  @IsInt()
  @Min(1)
  minSamples?: number;

  /** Highest concurrency the step-up tries. @default 256 */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10000)
  maxConcurrency?: number;

  /** Budget: most requests one endpoint's probe may send (warm-up included). @default 20000 */
  @IsOptional()
  @IsInt()
  @Min(1)
  maxRequests?: number;

  /**
   * Milliseconds before one probe request counts as an error (at this latency).
   * @default 5 x latencyThresholdMs; without it 5 x the level's latency limit (level 1:
   * `maxDurationMs`)
   */
  @IsOptional()
  @IsInt()
  @Min(1)
  requestTimeoutMs?: number;

  /**
   * Stop stepping up when doubling concurrency raises throughput by less than `kneeMinGain`
   * (a pure queue: more concurrency only adds waiting). @default true
   */
  @IsOptional()
  @IsBoolean()
  stopAtKnee?: boolean;

  /** Smallest relative throughput gain per doubling that still counts as progress. @default 0.1 */
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  kneeMinGain?: number;

  /**
   * The capacity is the smallest measured concurrency whose throughput reaches this share of
   * the peak throughput the probe measured (within the error and latency limits). Lower it to
   * trade throughput for latency. @default 0.95
   */
  @IsOptional()
  @IsNumber()
  @Min(0.5)
  @Max(1)
  throughputShare?: number;

  /**
   * Each level's warm-up lasts at least 2, and its measured window at least this many, of the
   * level's own mean latencies (beyond `warmupMs` / `levelDurationMs`): a slow endpoint's
   * throughput reading spans many waves of completions. @default 10
   */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  levelLatencies?: number;

  /**
   * Without `latencyThresholdMs`, a level fails when its p99 exceeds this many times the
   * endpoint's unloaded p50 (level 1 of the same probe), or `latencyFloorMs`, whichever is
   * higher. Ignored when `latencyThresholdMs` is set. @default 4
   */
  @IsOptional()
  @IsNumber()
  @Min(1.1)
  @Max(1000)
  latencyFactor?: number;

  /**
   * Lowest latency limit (ms) of the relative rule (see `latencyFactor`), so a millisecond
   * route is not failed by a stall of the host. @default 1000
   */
  @IsOptional()
  @IsInt()
  @Min(1)
  latencyFloorMs?: number;

  /**
   * Time budget of one endpoint's probe, ms. When it runs out the capacity is the largest level
   * proven within the limits (stop reason `deadline`), 1 when none was. @default 120000
   */
  @IsOptional()
  @IsInt()
  @Min(1000)
  maxDurationMs?: number;

  /**
   * A level whose expected latency (the nearest level measured below it) is at least this many
   * ms is paced by latency: its warm-up ends at its first response and each sender sends one
   * measured request, instead of `levelDurationMs` / `levelLatencies` / `minSamples`.
   * @default 500
   */
  @IsOptional()
  @IsInt()
  @Min(1)
  slowLatencyMs?: number;

  /** Reuse a stored probe result younger than this many seconds; 0 = forever. @default 0 */
  @IsOptional()
  @IsInt()
  @Min(0)
  resultTtl?: number;

  /**
   * TTL of the probe lock, ms: the prober renews it every third of it, and when a prober dies
   * the other workers take over once it has expired. @default 15000
   */
  @IsOptional()
  @IsInt()
  @Min(300)
  @Max(600_000)
  lockTtlMs?: number;
}

/** How the probe calls one endpoint (`endpoints[path]`, `@Balanced({ probe })`). */
export class EndpointProbeOptions {
  /** HTTP method of probe requests. @default the route's method */
  @IsOptional()
  @IsIn(HTTP_METHODS as unknown as string[])
  method?: HttpMethodName;

  /** Headers sent with every probe request. */
  @IsOptional()
  @IsObject()
  headers?: Record<string, string>;

  /** Body of probe requests (objects are sent as JSON). */
  @IsOptional()
  body?: unknown;

  /** Concrete path to probe, required for parameterized routes (`/items/:id` -> `/items/1`). */
  @IsOptional()
  @IsString()
  @Matches(/^\//, { message: '$property must start with /' })
  path?: string;
}
