import 'reflect-metadata';
import { Type } from 'class-transformer';
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
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import type { HealthIndicatorFunction } from '@nestjs/terminus';
import { IsBodyParser } from './body-options.validators';

/*
 * Option classes double as the public option types and as the class-validator schema.
 * Every property is optional here; `resolveBalancerOptions()` fills the documented defaults.
 * Durations follow the seed: timeouts and intervals in seconds, latencies in milliseconds.
 */

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethodName = (typeof HTTP_METHODS)[number];

export class StorageOptions {
  /**
   * `memory` keeps everything in this process; `redis` shares caps, queues and probe results
   * between every worker and host that uses the same Redis and `keyPrefix`.
   * @default 'memory'
   */
  @IsOptional()
  @IsIn(['memory', 'redis'])
  type?: 'memory' | 'redis';

  /** Redis URL, e.g. `redis://localhost:6379/0`. Used when no `client` or `redis` is given. */
  @IsOptional()
  @IsString()
  @Matches(/^rediss?:\/\//, { message: '$property must be a redis:// or rediss:// URL' })
  url?: string;

  /**
   * ioredis constructor options (Sentinel, TLS, …), or `{ cluster: [nodes], options }` for a
   * Redis Cluster. TypeScript only.
   */
  @IsOptional()
  @IsObject()
  redis?: Record<string, unknown>;

  /** An existing ioredis client (or Cluster). The balancer duplicates it and never closes it. */
  @IsOptional()
  client?: unknown;

  /**
   * Prefix of every Redis key. Two apps sharing one Redis must use different prefixes.
   * @default 'balancer'
   */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9:_.-]+$/, { message: '$property may only hold letters, digits and : _ . -' })
  keyPrefix?: string;

  /**
   * Seconds a slot lease lives without a heartbeat. A killed worker's slots return within it.
   * @default 5
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(1)
  @Max(3600)
  leaseTtl?: number;

  /**
   * Seconds a worker that lost Redis keeps admitting, on the slots it already holds, after its
   * last heartbeat; then it answers 503 until Redis is back. Must be shorter than `leaseTtl`:
   * the difference is the margin before those slots' leases can expire in Redis.
   * @default 0.6 x leaseTtl
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  @Max(3600)
  fallbackWindow?: number;
}

export class UiOptions {
  /** Serve the dashboard. @default true */
  @IsOptional()
  @IsBoolean()
  enable?: boolean;

  /** Where the dashboard is mounted. @default '/balancer/ui' */
  @IsOptional()
  @IsString()
  @Matches(/^\/[^\s?#]*$/, { message: '$property must be an absolute path such as /balancer/ui' })
  path?: string;

  /** Basic-auth user for the dashboard, `/balancer/stats` and `/balancer/metrics`. */
  @IsOptional()
  @IsString()
  username?: string;

  /** Basic-auth password. Set both `username` and `password` or neither. */
  @IsOptional()
  @IsString()
  password?: string;

  /** Seconds of per-second samples the server keeps for the charts. @default 300 */
  @IsOptional()
  @IsInt()
  @Min(60)
  @Max(86400)
  historySeconds?: number;
}

/**
 * The parts of a prom-client `Registry` the balancer uses. Declared here so the published
 * types never require prom-client (an optional peer); prom-client's `Registry` fits it.
 */
export interface MetricsRegistry {
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
  getSingleMetric(name: string): unknown;
  metrics(): Promise<string>;
  readonly contentType: string;
}

export class MetricsOptions {
  /** Collect Prometheus metrics (when prom-client is installed). @default true */
  @IsOptional()
  @IsBoolean()
  enable?: boolean;

  /**
   * Serve them at `GET /<routePrefix>/metrics`. Turn it off when they go into your own
   * registry, already scraped at your app's `/metrics`.
   * @default true without `registry`, false with one
   */
  @IsOptional()
  @IsBoolean()
  serve?: boolean;

  /**
   * Prepended to every metric name: `'myapp_'` gives `myapp_balancer_capacity`.
   * @default ''
   */
  @IsOptional()
  @IsString()
  @Matches(/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/, {
    message: '$property must be a Prometheus name prefix (letters, digits, _ and :)',
  })
  prefix?: string;

  /** Labels added to every balancer series (`{ service: 'scoring' }`). @default {} */
  @IsOptional()
  @IsObject()
  defaultLabels?: Record<string, string>;

  /**
   * A prom-client `Registry` of your app to register into (e.g. prom-client's default
   * `register`, the one `@willsoto/nestjs-prometheus` serves), instead of a private one.
   * The balancer removes its metrics from it at shutdown. TypeScript only.
   */
  @IsOptional()
  registry?: MetricsRegistry;
}

export class ProbeTuningOptions {
  /** Milliseconds of unmeasured load at each level before measuring. @default 300 */
  @IsOptional()
  @IsInt()
  @Min(0)
  warmupMs?: number;

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
   * @default 5 x latencyThresholdMs
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

  /** Reuse a stored probe result younger than this many seconds; 0 = forever. @default 0 */
  @IsOptional()
  @IsInt()
  @Min(0)
  resultTtl?: number;
}

/**
 * Adaptive capacity: after the probe (or from a manual capacity) a controller watches the
 * pool's own latency and throughput and moves its capacity within `[min, max]`.
 */
export class AdaptiveOptions {
  /** Turn the controller on or off (an `adaptive:` mapping alone turns it on). @default true */
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  /** Lowest capacity the controller may set. @default max(1, floor(base / 4)) */
  @IsOptional()
  @IsInt({ message: '$property must be a positive integer' })
  @Min(1, { message: '$property must be a positive integer' })
  min?: number;

  /** Highest capacity the controller may set. @default 2 x base (the probed or manual capacity) */
  @IsOptional()
  @IsInt({ message: '$property must be a positive integer' })
  @Min(1, { message: '$property must be a positive integer' })
  max?: number;

  /** Seconds between decisions (one observation of the pool each). @default 2 */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0.1)
  @Max(3600)
  interval?: number;

  /**
   * Seconds between live re-probes: the controller tries a step up on the pool's own traffic
   * even while a failed try backs it off. 0 = off. @default 0
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  reprobeInterval?: number;

  /** Latency above `reference x (1 + this)` counts as slower. @default 0.5 */
  @IsOptional()
  @IsNumber()
  @Min(0.05)
  @Max(10)
  latencyTolerance?: number;
}

const ADAPTIVE_TYPE = '$property must be true, false or a mapping (min, max, interval, …)';

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

/** Per-endpoint settings; used by `endpoints[path]` (YAML or TS) and by `@Balanced()`. */
export class EndpointOptions extends EndpointProbeOptions {
  /** Manual capacity: skips probing for this endpoint. */
  @IsOptional()
  @IsInt({ message: '$property must be a positive integer' })
  @Min(1, { message: '$property must be a positive integer' })
  capacity?: number;

  /** Seconds a request may wait in the queue before a 504. @default global queueTimeout */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  queueTimeout?: number;

  /** Most waiters in the queue; beyond it requests get 503 at once. @default global maxQueue */
  @IsOptional()
  @IsInt()
  @Min(0)
  maxQueue?: number;

  /**
   * Most bytes of request bodies (declared `Content-Length`) that may wait in this pool's queue
   * already read into memory (routes admitted after body parsing); beyond it requests that would
   * wait get 503 at once. Per process. `0` disables the budget. @default global maxQueueBytes
   */
  @IsOptional()
  @IsInt({ message: '$property must be a whole number of bytes' })
  @Min(0, { message: '$property must be a whole number of bytes' })
  maxQueueBytes?: number;

  /** Name of a pool shared with other routes: one cap and one queue for all of them. */
  @IsOptional()
  @IsString()
  pool?: string;

  /** Adaptive capacity for this endpoint's pool; overrides the global `adaptive`. */
  @IsOptional()
  @ValidateIf((_o, v) => typeof v !== 'boolean')
  @IsObject({ message: ADAPTIVE_TYPE })
  @ValidateNested()
  @Type(() => AdaptiveOptions)
  adaptive?: boolean | AdaptiveOptions;
}

/** Body parsers the balancer registers on Express after its early admission step. */
export interface BodyParserOptions {
  /** Largest JSON or urlencoded body, as body-parser takes it (`'10mb'`, bytes). @default '100kb' */
  limit?: string | number;
  /** Keep the raw body as `req.rawBody` (Nest's `rawBody` application option). @default false */
  rawBody?: boolean;
}

export class BalancerOptions {
  /** Where caps, queues and probe results live. @default { type: 'memory' } */
  @IsOptional()
  @ValidateNested()
  @Type(() => StorageOptions)
  storage?: StorageOptions;

  /** Accepted for compatibility with fastapi-balancer's YAML; has no effect (none there either). */
  @IsOptional()
  @IsString()
  routingStrategy?: string;

  /**
   * Path of this app's health route, checked over HTTP; `false`/`null` disables the HTTP check.
   * @default '/health'
   */
  @IsOptional()
  healthEndpoint?: string | false | null;

  /** Seconds between health checks. @default 10 */
  @IsOptional()
  @IsNumber()
  @Min(0.05)
  healthCheckInterval?: number;

  /** Seconds a health check may take before it counts as a failure. @default 2 */
  @IsOptional()
  @IsNumber()
  @Min(0.01)
  healthTimeout?: number;

  /** Consecutive failed checks before watched routes answer 503. @default 2 */
  @IsOptional()
  @IsInt()
  @Min(1)
  healthFailureThreshold?: number;

  /** Consecutive good checks before admission reopens. @default 1 */
  @IsOptional()
  @IsInt()
  @Min(1)
  healthRecoveryThreshold?: number;

  /** Terminus indicator functions that also drive the gate (TypeScript only). */
  @IsOptional()
  healthIndicators?: HealthIndicatorFunction[];

  /** Global queue timeout in seconds; 504 once a request has waited this long. @default 30 */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  queueTimeout?: number;

  /** Global bound on each pool's queue; further requests get 503 at once. @default 1000 */
  @IsOptional()
  @IsInt()
  @Min(0)
  maxQueue?: number;

  /**
   * Global default of `maxQueueBytes`: bytes of already-read request bodies that may wait in one
   * pool's queue (per process); `0` disables the budget. @default 104857600 (100 MiB)
   */
  @IsOptional()
  @IsInt({ message: '$property must be a whole number of bytes' })
  @Min(0, { message: '$property must be a whole number of bytes' })
  maxQueueBytes?: number;

  /**
   * Seconds a request admitted before its body was read may take to deliver the body once it
   * holds a slot; past it the slot goes back and the client gets 408. `0` disables the deadline.
   * @default 10
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  bodyTimeout?: number;

  /**
   * Express only: register the JSON and urlencoded body parsers after the balancer's admission
   * step (create the app with `{ bodyParser: false }`), so waiting requests keep their bodies
   * unread. `true` uses body-parser's defaults. @default false
   */
  @IsOptional()
  @IsBodyParser()
  bodyParser?: boolean | BodyParserOptions;

  /** Probe endpoints without a manual capacity when the server starts listening. @default true */
  @IsOptional()
  @IsBoolean()
  probeOnStartup?: boolean;

  /** Ignore stored probe results and measure again (once, not once per worker). @default false */
  @IsOptional()
  @IsBoolean()
  forceReprobe?: boolean;

  /** A probe level fails when its error rate exceeds this fraction. @default 0.05 */
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  errorThreshold?: number;

  /** A probe level fails when its p99 latency exceeds this many milliseconds. @default 2000 */
  @IsOptional()
  @IsNumber()
  @Min(1)
  latencyThresholdMs?: number;

  /** Probe tuning. */
  @IsOptional()
  @ValidateNested()
  @Type(() => ProbeTuningOptions)
  probe?: ProbeTuningOptions;

  /**
   * Adaptive capacity for every watched pool (`true`, or a mapping with bounds and timing);
   * `endpoints[path].adaptive` overrides it per endpoint. @default false
   */
  @IsOptional()
  @ValidateIf((_o, v) => typeof v !== 'boolean')
  @IsObject({ message: ADAPTIVE_TYPE })
  @ValidateNested()
  @Type(() => AdaptiveOptions)
  adaptive?: boolean | AdaptiveOptions;

  /** Capacity of an endpoint with no manual capacity while probing is off. @default 8 */
  @IsOptional()
  @IsInt({ message: '$property must be a positive integer' })
  @Min(1, { message: '$property must be a positive integer' })
  defaultCapacity?: number;

  /** Seconds in-flight requests may take to finish at shutdown. @default 30 */
  @IsOptional()
  @IsNumber()
  @Min(0)
  drainTimeout?: number;

  /** Dashboard settings. */
  @IsOptional()
  @ValidateNested()
  @Type(() => UiOptions)
  ui?: UiOptions;

  /**
   * Prometheus metrics (when prom-client is installed): `false` turns them off, an object
   * tunes them (name prefix, default labels, your own registry). @default true
   */
  @IsOptional()
  metrics?: boolean | MetricsOptions;

  /**
   * Path segment(s) of the balancer's own routes: `<routePrefix>/stats`, `/health`,
   * `/history`, `/metrics`. Routes are registered before a `forRootAsync` factory runs, so
   * there pass it to `forRootAsync({ routePrefix })` itself. @default 'balancer'
   */
  @IsOptional()
  @IsString()
  @Matches(/^\/?[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*\/?$/, {
    message: '$property must be a path such as balancer or ops/balancer',
  })
  routePrefix?: string;

  /**
   * Metadata set on the classes of the balancer's own controllers, for an app whose global
   * guard lets through routes marked public: `{ [IS_PUBLIC_KEY]: true }`. Like `routePrefix`,
   * give it to `forRootAsync({ routeMetadata })` itself there. TypeScript only.
   */
  @IsOptional()
  @IsObject()
  routeMetadata?: Record<string, unknown>;

  /** Serve `GET /<routePrefix>/stats` (the dashboard and `nestjs-balancer export` read it). @default true */
  @IsOptional()
  @IsBoolean()
  stats?: boolean;

  /** Per-endpoint settings keyed by the served path (`/predict`, `/v1/items/:id`). */
  @IsOptional()
  @IsObject()
  endpoints?: Record<string, EndpointOptions>;

  /** `false` silences the balancer's own log lines. @default true */
  @IsOptional()
  @IsBoolean()
  logger?: boolean;

  /**
   * How admission is attached to watched routes: `'guard'` (a guard plus a handler wrapper;
   * cheap) or `'interceptor'` (the previous `AdmissionInterceptor`). @default 'guard'
   */
  @IsOptional()
  @IsIn(['guard', 'interceptor'])
  admission?: 'guard' | 'interceptor';
}

/** What `BalancerModule.forRoot()` accepts: options, or the path of a YAML file. */
export type BalancerModuleOptions = BalancerOptions | string;
