import type { CallHandler } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { finalize, throwError, type Observable } from 'rxjs';
import { ClientClosedRequestException } from './admission.exceptions';
import { ADMISSION_STATE, releaseAdmission, type AdmissionState } from './admission-handler';

type WithState = { [ADMISSION_STATE]?: AdmissionState };

/**
 * The admission `EarlyAdmission` left on the raw Node request, if any. `req` is what Nest hands
 * to guards and interceptors: the raw request on Express, a wrapper with `.raw` on Fastify.
 */
export function earlyAdmissionOf(req: object): AdmissionState | undefined {
  const raw = (req as { raw?: IncomingMessage }).raw ?? req;
  return (raw as WithState)[ADMISSION_STATE];
}

/** Run the handler, marking it running until it settles; the slot goes back once the response is done too. */
export function trackHandler(state: AdmissionState, next: CallHandler): Observable<unknown> {
  // The connection closed after admission and the slot is already back: don't start work.
  if (state.released) return throwError(() => new ClientClosedRequestException());
  state.entered = true;
  state.running++;
  return next.handle().pipe(
    finalize(() => {
      if (--state.running > 0) return;
      state.handlerDone = true;
      if (state.responseDone) releaseAdmission(state);
    }),
  );
}
