import { RequestMethod } from '@nestjs/common';
import type { ApplicationConfig } from '@nestjs/core';
import { normalizePath } from './resolve-options';

/** One entry of `setGlobalPrefix(p, { exclude })` as Nest keeps it. */
interface ExcludedRoute {
  path: string;
  requestMethod: RequestMethod;
  pathRegex?: RegExp;
}

/**
 * Whether `setGlobalPrefix(p, { exclude })` leaves `method path` out of the prefix, matched as
 * Nest matches it (a string entry, or method `-1`, stands for every method).
 */
export function excludedFromGlobalPrefix(
  config: ApplicationConfig,
  path: string,
  method: RequestMethod,
): boolean {
  const exclude = (config.getGlobalPrefixOptions().exclude ?? []) as ExcludedRoute[];
  return exclude.some(
    (r) =>
      (r.requestMethod === RequestMethod.ALL ||
        (r.requestMethod as number) === -1 ||
        r.requestMethod === method) &&
      (r.pathRegex ? r.pathRegex.test(path) : normalizePath(r.path) === path),
  );
}
