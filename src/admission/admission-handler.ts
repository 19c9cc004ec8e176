import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { PARAMTYPES_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { isObservable } from 'rxjs';
import { finalize } from 'rxjs/operators';
import { ClientClosedRequestException } from './admission.exceptions';
import { WRAPPED_ORIGINAL, type HandlerSite } from './pool-registry';

export { ADMISSION_STATE, releaseAdmission, type AdmissionState } from './admission-state';
import { ADMISSION_STATE, handlerSettled, type AdmissionState } from './admission-state';

/** Index of the hidden `@Req()` argument Nest passes to a wrapper. */
const HIDDEN_REQ_INDEX = Symbol.for('nestjs-balancer.hidden-req-index');
/** How many arguments the original handler gets (what Nest passed it before the wrapper). */
const ORIGINAL_ARGS_LENGTH = Symbol.for('nestjs-balancer.original-args-length');

type Handler = ((...args: unknown[]) => unknown) & {
  [WRAPPED_ORIGINAL]?: Handler;
  [HIDDEN_REQ_INDEX]?: number;
  [ORIGINAL_ARGS_LENGTH]?: number;
};

interface ParamsHostHelpers {
  getClassRef(instance: object): ClassRef;
  getParamsHost(classRef: ClassRef, methodName: string): ClassRef;
}
type ClassRef = { prototype?: Record<string, unknown> } & object;

/**
 * The class whose `ROUTE_ARGS_METADATA` Nest reads for `instance[methodName]`. Nest 11.1+ keeps
 * a registry of class refs (mixins, Proxy-wrapped classes); older versions read
 * `instance.constructor`.
 */
let helpers: ParamsHostHelpers | null | undefined;
function paramsHost(instance: object, methodName: string): ClassRef {
  if (helpers === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      helpers = require('@nestjs/core/helpers/class-ref-registry') as ParamsHostHelpers;
      if (typeof helpers.getParamsHost !== 'function') helpers = null;
    } catch {
      helpers = null;
    }
  }
  if (helpers) return helpers.getParamsHost(helpers.getClassRef(instance), methodName);
  return (instance as { constructor: ClassRef }).constructor;
}

function copyOwnMetadata(from: object, to: object, key?: string): void {
  const keys =
    key === undefined ? Reflect.getOwnMetadataKeys(from) : Reflect.getOwnMetadataKeys(from, key);
  for (const k of keys) {
    const value: unknown =
      key === undefined ? Reflect.getOwnMetadata(k, from) : Reflect.getOwnMetadata(k, from, key);
    if (key === undefined) Reflect.defineMetadata(k, value, to);
    else if (!Reflect.hasOwnMetadata(k, to, key)) Reflect.defineMetadata(k, value, to, key);
  }
}

/**
 * Replace `proto[name]` with a wrapper that tracks when the handler runs (guard admission), once
 * per prototype and method: a second app in the same process finds the wrapper and keeps it.
 * Returns the function Nest will now read the route's metadata from.
 */
export function wrapHandler(site: HandlerSite): Handler {
  const { proto, name, instance } = site;
  const current = proto[name] as Handler;
  if (Object.prototype.hasOwnProperty.call(proto, name) && current[WRAPPED_ORIGINAL]) {
    return current;
  }
  const original = current[WRAPPED_ORIGINAL] ?? current;
  const hostBefore = paramsHost(instance, name);
  const args: Record<string, { index: number }> = {
    ...((Reflect.getMetadata(ROUTE_ARGS_METADATA, hostBefore, name) as
      Record<string, { index: number }> | undefined) ?? {}),
  };
  // A subclass inheriting a method another app wrapped on the base class: drop that wrapper's
  // hidden argument (inherited through the class chain), this wrapper adds its own.
  if (current[HIDDEN_REQ_INDEX] !== undefined) {
    delete args[`${RouteParamtypes.REQUEST}:${current[HIDDEN_REQ_INDEX]}`];
  }
  const indexes = Object.values(args).map((a) => a.index);
  const originalLength = indexes.length ? Math.max(...indexes) + 1 : 0;
  const paramtypes =
    (hostBefore.prototype &&
      (Reflect.getMetadata(PARAMTYPES_METADATA, hostBefore.prototype, name) as
        unknown[] | undefined)) ??
    (Reflect.getMetadata(PARAMTYPES_METADATA, instance, name) as unknown[] | undefined);
  const hidden = Math.max(originalLength, paramtypes?.length ?? 0);

  const wrapper = {
    [name](this: unknown, ...all: unknown[]): unknown {
      const req = all[hidden] as { [ADMISSION_STATE]?: AdmissionState } | undefined;
      const callArgs = all.length > originalLength ? all.slice(0, originalLength) : all;
      const state = req?.[ADMISSION_STATE];
      if (!state) return original.apply(this, callArgs);
      // The connection closed after admission and the slot is already back: don't start work.
      if (state.released) throw new ClientClosedRequestException();
      state.entered = true;
      state.running++;
      let result: unknown;
      try {
        result = original.apply(this, callArgs);
      } catch (error) {
        handlerSettled(state);
        throw error;
      }
      if (isObservable(result)) return result.pipe(finalize(() => handlerSettled(state)));
      if (isThenable(result)) {
        return Promise.resolve(result).finally(() => handlerSettled(state));
      }
      handlerSettled(state);
      return result;
    },
  }[name] as Handler;
  copyOwnMetadata(original, wrapper);
  wrapper[WRAPPED_ORIGINAL] = original;
  wrapper[HIDDEN_REQ_INDEX] = hidden;
  wrapper[ORIGINAL_ARGS_LENGTH] = originalLength;
  Object.defineProperty(proto, name, {
    value: wrapper,
    writable: true,
    configurable: true,
    enumerable: Object.getOwnPropertyDescriptor(proto, name)?.enumerable ?? false,
  });

  // Where Nest reads the parameters from now (a mixin's method no longer matches its class).
  const hostAfter = paramsHost(instance, name);
  if (hostAfter !== hostBefore) {
    copyOwnMetadata(hostBefore, hostAfter, name);
    if (hostBefore.prototype && hostAfter.prototype) {
      copyOwnMetadata(hostBefore.prototype, hostAfter.prototype, name);
    }
  }
  Reflect.defineMetadata(
    ROUTE_ARGS_METADATA,
    {
      ...args,
      [`${RouteParamtypes.REQUEST}:${hidden}`]: { index: hidden, data: undefined, pipes: [] },
    },
    hostAfter,
    name,
  );
  return wrapper;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
