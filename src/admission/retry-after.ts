import type { ServerResponse } from 'node:http';
import { BalancerRejection } from './admission.exceptions';

/**
 * Run `fn`; a `BalancerRejection` it throws (or returns) gets its `Retry-After` header on the raw
 * response first. Returns what `fn` returned otherwise.
 */
export function withRetryAfter<T>(raw: ServerResponse, fn: () => T): T {
  let value: T;
  try {
    value = fn();
  } catch (error) {
    setRetryAfter(raw, error);
    throw error;
  }
  setRetryAfter(raw, value);
  return value;
}

export function setRetryAfter(raw: ServerResponse, error: unknown): void {
  if (error instanceof BalancerRejection && !raw.headersSent)
    raw.setHeader('Retry-After', String(Math.max(1, Math.ceil(error.retryAfter))));
}
