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
import type { IncomingMessage } from 'node:http';
import { ADAPTIVE_TYPE, AdaptiveOptions } from './adaptive-options';
import { IsBodyParser } from './body-options.validators';
import { EndpointOptions } from './endpoint-options';
import { MetricsOptions } from './metrics-options';
import { DeadlineRules } from './deadline-options';
import { OverloadRules } from './overload-options';
import { ProbeTuningOptions } from './probe-options';
import { StorageOptions } from './storage-options';
import { UiOptions } from './ui-options';

// The option classes of each concern live in their own files; importers keep this one name.
export { AdaptiveOptions } from './adaptive-options';
export { EndpointOptions } from './endpoint-options';
export { MetricsOptions, type MetricsRegistry } from './metrics-options';
export type { OverloadSettings, PriorityFunction, TenantFunction } from './overload-options';
export type { DeadlineFunction, DeadlineSettings } from './deadline-options';
export {
  EndpointProbeOptions,
  HTTP_METHODS,
  ProbeTuningOptions,
  type HttpMethodName,
} from './probe-options';
export { StorageOptions } from './storage-options';
export { UiOptions } from './ui-options';

/*
 * Option classes double as the public option types and as the class-validator schema.
 * Every property is optional here; `resolveBalancerOptions()` fills the documented defaults.
 * Durations follow the seed: timeouts and intervals in seconds, latencies in milliseconds.
 */

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
   * Global default of `queueTargetMs` (bounded queue delay, milliseconds): a standing queue
   * sheds requests that would wait longer with 503 `shed`. `0` = off. @default off
   */
  @OverloadRules.queueTargetMs()
  queueTargetMs?: number;

  /**
   * Global default of `deadlineHeader`: the header whose value (ms, or `grpc-timeout` syntax) is
   * how long the client still waits (see the endpoints' `deadlineHeader`). @default off
   */
  @DeadlineRules.deadlineHeader()
  deadlineHeader?: string;

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
   * Milliseconds a rejected upload whose body was not read is still read (and thrown away) after
   * the answer, before the connection is closed: the client's time to read its 503/504 before
   * a reset. At most 1 MiB is read. @default 2000
   */
  @IsOptional()
  @IsInt({ message: '$property must be a whole number of milliseconds' })
  @Min(0)
  @Max(60_000)
  bodyLingerMs?: number;

  /**
   * Interim `100 Continue` responses sent about once a second to an upload waiting in the queue
   * with its body unread, so that a client that left is noticed (its kernel answers with a reset)
   * and leaves the queue. `'auto'`: to every HTTP/1.1 client but Node's `fetch` and undici
   * (User-Agent `node` or `undici`, or none), which drop a connection that answers an
   * unrequested 1xx; `'always'`; `'never'`. @default 'auto'
   */
  @IsOptional()
  @IsIn(['auto', 'always', 'never'])
  waitingPings?: 'auto' | 'always' | 'never';

  /**
   * Admission before the body is read, ahead of the app's guards (Fastify `preParsing`; on
   * Express a step before the body parsers). `true`: every request of a route that owns its
   * method and path; `false`: none (the guard or interceptor admits after the app's guards and
   * body parsing; `maxQueueBytes` bounds the bodies that wait); a function: the requests it
   * returns `true` for, the others are admitted after the app's guards. Give it a cheap check
   * (a credential is present) when the app authenticates watched routes: requests the app
   * rejects then never take a slot or a queue place. @default true
   */
  @IsOptional()
  earlyAdmission?: boolean | ((req: IncomingMessage) => boolean);

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

  /**
   * An absolute latency limit: a probe level fails when its p99 exceeds this many
   * milliseconds. Unset (the default), the limit is relative to the endpoint's own unloaded
   * latency (`probe.latencyFactor`, `probe.latencyFloorMs`). @default unset
   */
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
