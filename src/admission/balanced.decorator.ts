import { SetMetadata, UseGuards } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants';
import { BALANCED_METADATA } from '../config/balancer.constants';
import type { EndpointOptions, EndpointProbeOptions } from '../config/balancer-options';
import { mergeDeadlineSettings } from '../config/deadline-options';
import { mergeCostSettings } from '../config/cost-options';
import { mergeOverloadSettings } from '../config/overload-options';
import { AdmissionGuard } from './admission.guard';
import { wrapForAdmission } from './handler-wrapper';

/** Settings for `@Balanced()`; options' `endpoints[path]` win over these. */
export interface BalancedOptions extends Pick<
  EndpointOptions,
  | 'capacity'
  | 'queueTimeout'
  | 'maxQueue'
  | 'maxQueueBytes'
  | 'pool'
  | 'queueTargetMs'
  | 'tenant'
  | 'tenantHeader'
  | 'maxQueuePerTenant'
  | 'priority'
  | 'priorityHeader'
  | 'priorityAging'
  | 'deadlineHeader'
  | 'deadline'
  | 'cost'
  | 'costHeader'
  | 'maxQueueCost'
> {
  /** How the probe calls this route (method, headers, body, concrete path). */
  probe?: EndpointProbeOptions;
}

/**
 * Put a route (method) or every route of a controller (class) under admission control.
 * Method-level settings override class-level ones; the options are validated at startup.
 *
 * Composes, where the class is defined and with public Nest APIs only: the options as metadata,
 * `UseGuards(AdmissionGuard)` (after global and controller guards, and after method guards
 * written below it), and a method wrapper that tells the admission when the handler settles.
 * On a class it wraps the routes the class declares or inherits at that point.
 */
export function Balanced(options: BalancedOptions = {}): ClassDecorator & MethodDecorator {
  return ((target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (descriptor && key !== undefined) {
      SetMetadata(BALANCED_METADATA, options)(target, key, descriptor);
      if (typeof key === 'string') declare(target, key, options);
      const wrapped =
        typeof key === 'string' ? wrapForAdmission(target, key, descriptor) : undefined;
      const next = wrapped ?? descriptor;
      UseGuards(AdmissionGuard)(target, key, next);
      return next;
    }
    const ctor = target as { prototype: object };
    SetMetadata(BALANCED_METADATA, options)(target as () => void);
    for (const [name, found] of routeMethods(ctor.prototype)) {
      const wrapped = wrapForAdmission(ctor.prototype, name, found);
      if (wrapped) Object.defineProperty(ctor.prototype, name, wrapped);
    }
    UseGuards(AdmissionGuard)(target as () => void);
    return undefined;
  }) as ClassDecorator & MethodDecorator;
}

/** `@Balanced()` options by prototype and method name, where the decorator was written. */
const declared = new WeakMap<object, Map<string, BalancedOptions>>();

function declare(proto: object, key: string, options: BalancedOptions): void {
  let methods = declared.get(proto);
  if (!methods) declared.set(proto, (methods = new Map()));
  methods.set(key, options);
}

/**
 * The options a method-level `@Balanced()` was given for `proto[key]` (or the nearest parent
 * declaring it): route discovery finds a watched route by this even when a decorator written
 * above `@Balanced()` replaced the method without copying its metadata.
 */
export function declaredBalanced(proto: object, key: string): BalancedOptions | undefined {
  for (let p: object | null = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const found = declared.get(p)?.get(key);
    if (found) return found;
    if (Object.prototype.hasOwnProperty.call(p, key)) return undefined;
  }
  return undefined;
}

/**
 * The options of a route from its controller's `@Balanced()` and its method's (either may be
 * absent): the method's win key by key, the probe settings are merged, and a tenant, priority or
 * deadline source (function or header) on the method replaces the controller's whole.
 */
export function mergeBalancedOptions(
  classLevel: BalancedOptions | undefined,
  methodLevel: BalancedOptions | undefined,
): BalancedOptions | undefined {
  if (!classLevel && !methodLevel) return undefined;
  const merged: BalancedOptions = {
    ...classLevel,
    ...methodLevel,
    probe: { ...classLevel?.probe, ...methodLevel?.probe },
  };
  const overload = mergeOverloadSettings([methodLevel, classLevel]);
  for (const key of ['tenant', 'tenantHeader', 'priority', 'priorityHeader'] as const) {
    if (overload[key] === undefined) delete merged[key];
  }
  const deadline = mergeDeadlineSettings([methodLevel, classLevel]);
  for (const key of ['deadline', 'deadlineHeader'] as const) {
    if (deadline[key] === undefined) delete merged[key];
  }
  const cost = mergeCostSettings([methodLevel, classLevel]);
  for (const key of ['cost', 'costHeader'] as const) {
    if (cost[key] === undefined) delete merged[key];
  }
  return merged;
}

/** Route methods on `proto` and its parents (the nearest definition of each name). */
function routeMethods(proto: object): [string, PropertyDescriptor][] {
  const out = new Map<string, PropertyDescriptor>();
  const seen = new Set<string>();
  for (let p: object | null = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name === 'constructor' || seen.has(name)) continue;
      seen.add(name);
      const d = Object.getOwnPropertyDescriptor(p, name);
      if (typeof d?.value !== 'function') continue;
      if (Reflect.getMetadata(PATH_METADATA, d.value as object) === undefined) continue;
      out.set(name, { ...d, configurable: true, writable: true });
    }
  }
  return [...out];
}
