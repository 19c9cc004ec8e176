import type { IncomingMessage } from 'node:http';
import { IsInt, IsNumber, IsOptional, IsString, Matches, Min, ValidateBy } from 'class-validator';

/*
 * Overload policies of one endpoint (issue 11): a bounded queue delay (`queueTargetMs`), tenants
 * served round-robin (`tenant` / `tenantHeader`, `maxQueuePerTenant`) and priorities
 * (`priority` / `priorityHeader`, `priorityAging`). All optional and off by default: a pool
 * without them keeps the plain FIFO queue. The store applies them (see
 * `storage/queue-order.ts`); admission reads tenant and priority from the request.
 */

/**
 * Reads a request's tenant (fair-share key): a non-empty string, or `undefined` for the pool's
 * one shared default tenant (a header's value fits as is: of a repeated header the first counts).
 * Runs on the Node request, possibly before its body is read.
 */
export type TenantFunction = (req: IncomingMessage) => string | string[] | undefined;

/** Reads a request's priority: higher is served first; anything but a finite number is 0. */
export type PriorityFunction = (req: IncomingMessage) => number;

/** The overload-policy settings of one endpoint (`endpoints[path]` and `@Balanced()`). */
export interface OverloadSettings {
  queueTargetMs?: number;
  tenant?: TenantFunction;
  tenantHeader?: string;
  maxQueuePerTenant?: number;
  priority?: PriorityFunction;
  priorityHeader?: string;
  priorityAging?: number;
}

/** Settings that come as a pair: the function or the header, never both. */
const PAIRS = [
  ['tenant', 'tenantHeader'],
  ['priority', 'priorityHeader'],
] as const;

const SINGLE_KEYS = ['queueTargetMs', 'maxQueuePerTenant', 'priorityAging'] as const;

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_MESSAGE = '$property must be an HTTP header name such as x-api-key';
const POSITIVE_INT = '$property must be a positive integer';

/** One property decorator that applies each of `decorators`. */
export function all(...decorators: PropertyDecorator[]): PropertyDecorator {
  return (target, key) => {
    for (const d of decorators) d(target, key);
  };
}

function IsFunction(message: string): PropertyDecorator {
  return ValidateBy({
    name: 'isFunction',
    validator: { validate: (value) => typeof value === 'function', defaultMessage: () => message },
  });
}

/**
 * The validation rules of each overload option, shared by the classes that declare them
 * (`EndpointOptions`, `BalancerOptions.queueTargetMs`, the `@Balanced()` schema).
 */
export const OverloadRules = {
  queueTargetMs: (): PropertyDecorator =>
    all(
      IsOptional(),
      IsNumber({}, { message: '$property must be a number of milliseconds (0 = off)' }),
      Min(0, { message: '$property must be a number of milliseconds (0 = off)' }),
    ),
  tenant: (): PropertyDecorator =>
    all(
      IsOptional(),
      IsFunction(
        '$property must be a function (req) => string | undefined (TypeScript only; ' +
          'in YAML use tenant_header)',
      ),
    ),
  tenantHeader: (): PropertyDecorator =>
    all(IsOptional(), IsString(), Matches(HEADER_NAME, { message: HEADER_MESSAGE })),
  maxQueuePerTenant: (): PropertyDecorator =>
    all(IsOptional(), IsInt({ message: POSITIVE_INT }), Min(1, { message: POSITIVE_INT })),
  priority: (): PropertyDecorator =>
    all(
      IsOptional(),
      IsFunction(
        '$property must be a function (req) => number (TypeScript only; in YAML use priority_header)',
      ),
    ),
  priorityHeader: (): PropertyDecorator =>
    all(IsOptional(), IsString(), Matches(HEADER_NAME, { message: HEADER_MESSAGE })),
  priorityAging: (): PropertyDecorator =>
    all(IsOptional(), IsInt({ message: POSITIVE_INT }), Min(1, { message: POSITIVE_INT })),
};

/**
 * Problems no single-field rule sees, for one layer of settings (`where` names it, e.g.
 * `endpoints./predict`): a function and a header for the same thing.
 */
export function overloadConflicts(settings: OverloadSettings, where: string): string[] {
  const out: string[] = [];
  for (const [fn, header] of PAIRS) {
    if (settings[fn] !== undefined && settings[header] !== undefined) {
      out.push(`${where}: ${fn} and ${header} are both set; use one of them`);
    }
  }
  return out;
}

/**
 * One endpoint's settings from its layers, highest precedence first (`endpoints[path]`, then
 * `@Balanced()` on the method, then on the controller), then the global `queueTargetMs`. Each
 * key comes from the first layer that sets it; a pair (`tenant` / `tenantHeader`,
 * `priority` / `priorityHeader`) comes whole from the first layer that sets either half, so a
 * header in the options replaces a function in the decorator.
 */
export function mergeOverloadSettings(
  layers: ReadonlyArray<OverloadSettings | undefined>,
  globalQueueTargetMs?: number,
): OverloadSettings {
  const out: OverloadSettings = {};
  for (const key of SINGLE_KEYS) {
    const layer = layers.find((l) => l?.[key] !== undefined);
    if (layer) out[key] = layer[key];
  }
  if (out.queueTargetMs === undefined && globalQueueTargetMs !== undefined) {
    out.queueTargetMs = globalQueueTargetMs;
  }
  const tenant = layers.find((l) => l?.tenant !== undefined || l?.tenantHeader !== undefined);
  if (tenant?.tenant !== undefined) out.tenant = tenant.tenant;
  else if (tenant?.tenantHeader !== undefined) out.tenantHeader = tenant.tenantHeader;
  const priority = layers.find((l) => l?.priority !== undefined || l?.priorityHeader !== undefined);
  if (priority?.priority !== undefined) out.priority = priority.priority;
  else if (priority?.priorityHeader !== undefined) out.priorityHeader = priority.priorityHeader;
  return out;
}

/**
 * `true` when `settings` set any policy (a `queueTargetMs` of 0 is off). `priorityAging` alone
 * counts: `BalancerService.run()` callers may pass priorities on a pool without a priority source.
 */
export function hasOverloadPolicy(settings: OverloadSettings): boolean {
  return (
    (settings.queueTargetMs ?? 0) > 0 ||
    settings.tenant !== undefined ||
    settings.tenantHeader !== undefined ||
    settings.priority !== undefined ||
    settings.priorityHeader !== undefined ||
    settings.maxQueuePerTenant !== undefined ||
    settings.priorityAging !== undefined
  );
}
