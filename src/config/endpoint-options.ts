import 'reflect-metadata';
import { Type } from 'class-transformer';
import {
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { ADAPTIVE_TYPE, AdaptiveOptions } from './adaptive-options';
import { CostRules, type CostFunction, type CostSettings } from './cost-options';
import {
  all,
  OverloadRules,
  type OverloadSettings,
  type PriorityFunction,
  type TenantFunction,
} from './overload-options';
import { DeadlineRules, type DeadlineFunction, type DeadlineSettings } from './deadline-options';
import { EndpointProbeOptions } from './probe-options';

/**
 * The queue and cap rules shared by `endpoints[path]` and `@Balanced()` (one definition, so the
 * two cannot drift apart).
 */
export const QueueRules = {
  capacity: (): PropertyDecorator =>
    all(
      IsOptional(),
      IsInt({ message: '$property must be a positive integer' }),
      Min(1, { message: '$property must be a positive integer' }),
    ),
  queueTimeout: (): PropertyDecorator =>
    all(IsOptional(), IsNumber({}, { message: '$property must be a number of seconds' }), Min(0)),
  maxQueue: (): PropertyDecorator => all(IsOptional(), IsInt(), Min(0)),
  maxQueueBytes: (): PropertyDecorator =>
    all(
      IsOptional(),
      IsInt({ message: '$property must be a whole number of bytes' }),
      Min(0, { message: '$property must be a whole number of bytes' }),
    ),
  pool: (): PropertyDecorator => all(IsOptional(), IsString()),
};

/** Per-endpoint settings; used by `endpoints[path]` (YAML or TS) and by `@Balanced()`. */
export class EndpointOptions
  extends EndpointProbeOptions
  implements OverloadSettings, DeadlineSettings, CostSettings
{
  /** Manual capacity: skips probing for this endpoint. */
  @QueueRules.capacity()
  capacity?: number;

  /** Seconds a request may wait in the queue before a 504. @default global queueTimeout */
  @QueueRules.queueTimeout()
  queueTimeout?: number;

  /** Most waiters in the queue; beyond it requests get 503 at once. @default global maxQueue */
  @QueueRules.maxQueue()
  maxQueue?: number;

  /**
   * Most bytes of request bodies (declared `Content-Length`) that may wait in this pool's queue
   * already read into memory (routes admitted after body parsing); beyond it requests that would
   * wait get 503 at once. Per process. `0` disables the budget. @default global maxQueueBytes
   */
  @QueueRules.maxQueueBytes()
  maxQueueBytes?: number;

  /** Name of a pool shared with other routes: one cap and one queue for all of them. */
  @QueueRules.pool()
  pool?: string;

  /** Adaptive capacity for this endpoint's pool; overrides the global `adaptive`. */
  @IsOptional()
  @ValidateIf((_o, v) => typeof v !== 'boolean')
  @IsObject({ message: ADAPTIVE_TYPE })
  @ValidateNested()
  @Type(() => AdaptiveOptions)
  adaptive?: boolean | AdaptiveOptions;

  /**
   * Bounded queue delay in milliseconds: once every request granted from the queue over an
   * interval (5 targets, at least 100 ms) waited longer than this, a request that would wait
   * longer is answered 503 `shed` at once. `0` = off. @default global queueTargetMs (off)
   */
  @OverloadRules.queueTargetMs()
  queueTargetMs?: number;

  /**
   * The request's tenant: waiters are served round-robin across tenants. Receives the Node
   * request (headers; the body may be unread). TypeScript only; not with `tenantHeader`.
   */
  @OverloadRules.tenant()
  tenant?: TenantFunction;

  /** Header whose value is the request's tenant (e.g. `x-api-key`); not with `tenant`. */
  @OverloadRules.tenantHeader()
  tenantHeader?: string;

  /** Most waiters of one tenant; beyond it that tenant's requests get 503. @default none */
  @OverloadRules.maxQueuePerTenant()
  maxQueuePerTenant?: number;

  /**
   * The request's priority (integer, higher first, default 0). Receives the Node request.
   * TypeScript only; not with `priorityHeader`.
   */
  @OverloadRules.priority()
  priority?: PriorityFunction;

  /** Header whose value is the request's priority (an integer); not with `priority`. */
  @OverloadRules.priorityHeader()
  priorityHeader?: string;

  /**
   * Places in the queue one step of priority is worth: a request overtakes only waiters that
   * queued less than `priorityAging x (difference of priority)` places before it. @default 1000
   */
  @OverloadRules.priorityAging()
  priorityAging?: number;

  /**
   * Header holding the time the client still waits, in ms (`2000`) or `grpc-timeout` syntax
   * (`2S`, `100m`): the request leaves the queue at its deadline (504 `deadline`), is refused at
   * arrival when its predicted wait exceeds it (503 `deadline_unreachable`), and the handler's
   * `@DeadlineSignal()` fires at it. A malformed value: no deadline. Not with `deadline`.
   * @default global deadlineHeader (off)
   */
  @DeadlineRules.deadlineHeader()
  deadlineHeader?: string;

  /**
   * The request's deadline: milliseconds it still has (number) or an absolute `Date`; receives
   * the Node request. TypeScript only; not with `deadlineHeader`. @default none
   */
  @DeadlineRules.deadline()
  deadline?: DeadlineFunction;

  /**
   * Units a request holds while it runs (tokens, pixels, bytes): a function of the Node request
   * (headers; the body is unread) returning a positive number. The pool's capacity then counts
   * units. TypeScript only; not with `costHeader`. @default every request counts 1
   */
  @CostRules.cost()
  cost?: CostFunction;

  /** Header the app trusts whose value is the request's units (e.g. set by a gateway); not with `cost`. */
  @CostRules.costHeader()
  costHeader?: string;

  /** Most units waiting in the pool's queue; beyond it requests get 503 `queue_cost_full`. @default none */
  @CostRules.maxQueueCost()
  maxQueueCost?: number;
}
