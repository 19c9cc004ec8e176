import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { AdmissionControl, type RawRequest } from './admission-control';
import { ADMISSION_STATE, releaseAdmission, type AdmissionState } from './admission-handler';
import { earlyAdmissionOf } from './early-admission-state';
import type { Lease } from '../storage/capacity-store.interface';

interface GuardedRequest extends RawRequest {
  [ADMISSION_STATE]?: AdmissionState;
}

/**
 * Admission control for watched routes, as a guard (the default; `admission: 'guard'`).
 * `BalancerModule` appends it to the guards of exactly the watched handlers, after the app's
 * own guards, and wraps those handlers so it knows when they run. Nest's guard step costs a
 * route far less than its interceptor pipeline.
 *
 * The slot is released exactly once, when the handler is done (or was never entered) AND the
 * response is done ('finish' or 'close' of the raw response).
 */
@Injectable()
export class AdmissionGuard implements CanActivate {
  constructor(private readonly control: AdmissionControl) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const target = this.control.target<GuardedRequest>(context);
    if (!target) return true;
    if (this.takeEarlyAdmission(target.req)) return true;
    const lease = this.control.admit(target);
    if (!(lease instanceof Promise)) {
      this.hold(target.req, target.raw, lease);
      return true;
    }
    return lease.then((l) => {
      this.hold(target.req, target.raw, l);
      return true;
    });
  }

  /**
   * Admitted already, before the body was read (`EarlyAdmission` leaves its state on the raw
   * Node request): do not admit again; the handler wrapper reads the state from `@Req()`.
   */
  private takeEarlyAdmission(req: GuardedRequest): boolean {
    const state = earlyAdmissionOf(req);
    if (!state) return false;
    req[ADMISSION_STATE] = state;
    return true;
  }

  /**
   * Hold `lease` for this request. The handler wrapper marks when the handler runs and settles;
   * the response listeners here mark when the response is done. Whichever comes last releases.
   */
  private hold(req: GuardedRequest, raw: ServerResponse, lease: Lease): void {
    const state: AdmissionState = {
      lease,
      running: 0,
      entered: false,
      handlerDone: false,
      responseDone: false,
      released: false,
    };
    req[ADMISSION_STATE] = state;
    const onResponseDone = (): void => {
      raw.off('finish', onResponseDone);
      raw.off('close', onResponseDone);
      state.responseDone = true;
      if (!state.entered || state.handlerDone) releaseAdmission(state);
    };
    if (raw.destroyed || raw.writableFinished) {
      // Already gone (no 'close' will come): the wrapper refuses to run the handler.
      onResponseDone();
      return;
    }
    raw.once('finish', onResponseDone);
    raw.once('close', onResponseDone);
  }
}
