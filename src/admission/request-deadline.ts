import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * Longest deadline kept, in ms from now: Node's timers hold at most 2^31 - 1 ms (about 24.8
 * days) and fire at once beyond it, so a deadline further away counts as none.
 */
export const MAX_DEADLINE_MS = 2_147_483_647;

/** Why a deadline signal fired, and what a deadline-aware wait rejects with inside the balancer. */
export class DeadlineExceededError extends Error {
  constructor(readonly pool: string) {
    super(`the deadline of a request of pool "${pool}" has passed`);
    this.name = 'DeadlineExceededError';
  }
}

/**
 * A deadline as a moment on the monotonic clock (`performance.now()` ms) from `ms` (milliseconds
 * from `now`) or an absolute `Date`. `undefined` for no deadline: `undefined`, a non-finite
 * number, an invalid `Date`, or one further than `MAX_DEADLINE_MS` away.
 */
export function deadlineAt(
  value: number | Date | undefined,
  now: number = performance.now(),
): number | undefined {
  const ms = value instanceof Date ? value.getTime() - Date.now() : value;
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms > MAX_DEADLINE_MS) return undefined;
  return ms === -Infinity ? now - 1 : now + ms;
}

interface DeadlineState {
  at: number;
  pool: string;
  signal?: AbortSignal;
}

/** Where a request's deadline lives: on the raw Node request, as its admission does. */
const DEADLINE = Symbol.for('nestjs-balancer.deadline');
type WithDeadline = IncomingMessage & { [DEADLINE]?: DeadlineState };

/** Remember the deadline admission read for `raw` (the handler's signal fires at it). */
export function setRequestDeadline(raw: IncomingMessage, pool: string, at: number): void {
  (raw as WithDeadline)[DEADLINE] = { at, pool };
}

/** The deadline of `raw` (monotonic ms), if admission read one. */
export function requestDeadline(raw: IncomingMessage): number | undefined {
  return (raw as WithDeadline)[DEADLINE]?.at;
}

/**
 * The signal that fires at the deadline of `raw` (one per request, created on first ask); its
 * timer is cleared once `res` has been sent (the work is done). A client that hung up leaves it
 * armed: the handler may still be working for no one, and the deadline stops it at the latest.
 * `undefined` when the request has no deadline.
 */
export function requestDeadlineSignal(
  raw: IncomingMessage,
  res: ServerResponse,
): AbortSignal | undefined {
  const state = (raw as WithDeadline)[DEADLINE];
  if (!state) return undefined;
  if (!state.signal) {
    const { signal, disarm } = deadlineSignal(state.at, state.pool);
    state.signal = signal;
    if (res.writableFinished) disarm();
    else if (!res.destroyed) {
      res.once('close', () => {
        if (res.writableFinished) disarm();
      });
    }
  }
  return state.signal;
}

/**
 * A signal aborted with a `DeadlineExceededError` at `at` (monotonic ms; at once when already
 * past), and `disarm()` to clear its timer when the work is over.
 */
export function deadlineSignal(
  at: number,
  pool: string,
  parent?: AbortSignal,
): { signal: AbortSignal; disarm: () => void } {
  const controller = new AbortController();
  const fire = (): void => controller.abort(new DeadlineExceededError(pool));
  const onParent = (): void => controller.abort(parent?.reason);
  const left = at - performance.now();
  let timer: NodeJS.Timeout | undefined;
  if (parent?.aborted) onParent();
  else if (left <= 0) fire();
  else {
    timer = setTimeout(fire, left);
    timer.unref();
    parent?.addEventListener('abort', onParent, { once: true });
  }
  return {
    signal: controller.signal,
    disarm: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

/** `true` when `signal` fired because a deadline passed. */
export function firedAtDeadline(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && signal.reason instanceof DeadlineExceededError;
}
