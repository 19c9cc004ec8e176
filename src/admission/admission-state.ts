import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Lease } from '../storage/capacity-store.interface';

/**
 * Where the admission of one request lives: on the raw Node request (Express `req`, Fastify
 * `request.raw`), so every layer that admits (early admission before body parsing, the guard,
 * the interceptor) and the handler wrapper see the same state, whoever admitted first.
 */
export const ADMISSION_STATE = Symbol.for('nestjs-balancer.admission-state');

/**
 * One admitted request. The slot goes back exactly once, when the handler is done (or was
 * never entered) AND the response is done ('finish' or 'close' of the raw response).
 */
export interface AdmissionState {
  lease: Lease;
  /** Handler calls that have not settled yet (a retrying interceptor may call it again). */
  running: number;
  entered: boolean;
  handlerDone: boolean;
  responseDone: boolean;
  released: boolean;
}

/** A raw request that may carry an admission. */
export type AdmittedRequest = IncomingMessage & { [ADMISSION_STATE]?: AdmissionState };

export function releaseAdmission(state: AdmissionState): void {
  if (state.released) return;
  state.released = true;
  void state.lease.release();
}

/** The admission already attached to `raw`, if any. */
export function admissionOf(raw: IncomingMessage): AdmissionState | undefined {
  return (raw as AdmittedRequest)[ADMISSION_STATE];
}

/** Mark that the handler started (one more call in flight). */
export function handlerEntered(state: AdmissionState): void {
  state.entered = true;
  state.running++;
}

/** One handler call settled; releases when it was the last one and the response is done. */
export function handlerSettled(state: AdmissionState): void {
  if (--state.running > 0) return;
  state.handlerDone = true;
  if (state.responseDone) releaseAdmission(state);
}

/**
 * Create the state for `lease`, attach it to the raw request and release on the raw response's
 * 'finish' or 'close' once the handler is done (or was never entered).
 */
export function attachAdmission(
  lease: Lease,
  rawReq: IncomingMessage,
  rawRes: ServerResponse,
): AdmissionState {
  const state: AdmissionState = {
    lease,
    running: 0,
    entered: false,
    handlerDone: false,
    responseDone: false,
    released: false,
  };
  (rawReq as AdmittedRequest)[ADMISSION_STATE] = state;
  const onResponseDone = (): void => {
    if (state.responseDone) return;
    state.responseDone = true;
    if (!state.entered || state.handlerDone) releaseAdmission(state);
  };
  if (rawRes.destroyed || rawRes.writableFinished) {
    // Already gone (no 'close' will come): the handler wrapper refuses to start the work.
    onResponseDone();
    return state;
  }
  // A server response emits 'close' once: right after 'finish' when it was sent, or when the
  // connection ended first. One plain listener (no `once` wrappers to build and remove; the
  // response goes away with it) keeps the per-request cost down.
  rawRes.on('close', onResponseDone);
  return state;
}

/**
 * Set on the raw request by the guard or interceptor when they let a request of a decorated
 * route through on purpose (the balancer's own probe, a route no pool watches), so the handler
 * wrapper can tell that from a request that skipped admission.
 */
export const ADMISSION_PASS = Symbol.for('nestjs-balancer.admission-pass');

export function markPassed(raw: IncomingMessage): void {
  (raw as IncomingMessage & { [ADMISSION_PASS]?: boolean })[ADMISSION_PASS] = true;
}

export function wasPassed(raw: IncomingMessage): boolean {
  return (raw as IncomingMessage & { [ADMISSION_PASS]?: boolean })[ADMISSION_PASS] === true;
}
