import { Req } from '@nestjs/common';
import { PARAMTYPES_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import type { IncomingMessage } from 'node:http';
import { isObservable } from 'rxjs';
import { finalize } from 'rxjs/operators';
import { ClientClosedRequestException } from './admission.exceptions';
import { countUnadmitted } from './admission-misses';
import { admissionOf, handlerEntered, handlerSettled, wasPassed } from './admission-state';

/**
 * Metadata on a `@Balanced()` method wrapper (metadata, not a property: wrappers that tracing
 * libraries put around handlers copy a handler's metadata). Its value is the index of the hidden
 * request argument.
 */
export const ADMISSION_WRAPPER_METADATA = 'nestjs-balancer:admission-wrapper';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** `true` when `handler` is (or keeps the metadata of) a `@Balanced()` method wrapper. */
export function isAdmissionWrapper(handler: unknown): boolean {
  return (
    typeof handler === 'function' &&
    Reflect.getMetadata(ADMISSION_WRAPPER_METADATA, handler) !== undefined
  );
}

/**
 * Wrap `proto[key]` where the class is defined (the `@Transactional` / `@Span` pattern) so the
 * admission of a request knows when its handler runs and settles. The wrapper takes one hidden
 * argument after the handler's own, declared with Nest's public `@Req()` parameter decorator,
 * reads the admission from the raw request and calls the original with the original arguments.
 * Returns the descriptor to install; `undefined` when the method is already wrapped.
 */
export function wrapForAdmission(
  proto: object,
  key: string,
  descriptor: PropertyDescriptor,
): PropertyDescriptor | undefined {
  const original = descriptor.value as Method | undefined;
  if (typeof original !== 'function' || isAdmissionWrapper(original)) return undefined;
  const ctor = (proto as { constructor: object }).constructor;
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, ctor, key) ?? {}) as Record<
    string,
    { index: number }
  >;
  const paramtypes = Reflect.getMetadata(PARAMTYPES_METADATA, proto, key) as unknown[] | undefined;
  const hidden = Math.max(
    original.length,
    paramtypes?.length ?? 0,
    ...Object.values(args).map((a) => a.index + 1),
  );

  const route = `${(ctor as { name?: string }).name ?? 'controller'}.${key}`;
  const wrapper = {
    [key](this: unknown, ...all: unknown[]): unknown {
      const req = all[hidden] as (IncomingMessage & { raw?: IncomingMessage }) | undefined;
      const callArgs = all.length > hidden ? all.slice(0, hidden) : all;
      // Express hands over the Node request itself, Fastify a request wrapping it as `.raw`.
      const raw = req && typeof req === 'object' ? (req.raw ?? req) : undefined;
      const state = raw?.headers ? admissionOf(raw) : undefined;
      if (!state) {
        if (raw?.headers && !wasPassed(raw)) countUnadmitted(route);
        return original.apply(this, callArgs);
      }
      // The connection closed after admission and the slot is already back: don't start work.
      if (state.released) throw new ClientClosedRequestException();
      handlerEntered(state);
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
  }[key] as Method;
  for (const k of Reflect.getOwnMetadataKeys(original)) {
    Reflect.defineMetadata(k, Reflect.getOwnMetadata(k, original), wrapper);
  }
  Reflect.defineMetadata(ADMISSION_WRAPPER_METADATA, hidden, wrapper);
  Req()(proto, key, hidden);
  return { ...descriptor, value: wrapper };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
