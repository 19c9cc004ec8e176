import type { IncomingMessage } from 'node:http';
import { finalize, type Observable } from 'rxjs';
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

/** Mark the handler running until `handled` settles; the slot goes back once the response is done too. */
export function trackHandler<T>(state: AdmissionState, handled: Observable<T>): Observable<T> {
  state.entered = true;
  state.running++;
  return handled.pipe(
    finalize(() => {
      if (--state.running > 0) return;
      state.handlerDone = true;
      if (state.responseDone) releaseAdmission(state);
    }),
  );
}
