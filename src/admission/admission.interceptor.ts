import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { finalize, type Observable } from 'rxjs';
import { AdmissionControl } from './admission-control';
import { earlyAdmissionOf, trackHandler } from './early-admission-state';
import type { Lease } from '../storage/capacity-store.interface';

/**
 * Admission control for watched routes as an interceptor (`admission: 'interceptor'`; the
 * default is `AdmissionGuard`). `BalancerModule` puts it first among the interceptors of exactly
 * the watched handlers. A watched request waits for a slot of its pool, runs, and gives the slot
 * back exactly once when both the handler and the response are done.
 */
@Injectable()
export class AdmissionInterceptor implements NestInterceptor {
  constructor(private readonly control: AdmissionControl) {}

  intercept(
    context: ExecutionContext,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    const target = this.control.target(context);
    if (!target) return next.handle();
    // Admitted already, before the body was read: only track when the handler settles.
    const early = earlyAdmissionOf(target.req);
    if (early) return trackHandler(early, next);
    const lease = this.control.admit(target);
    if (!(lease instanceof Promise)) return this.run(target.raw, lease, next);
    return lease.then((l) => this.run(target.raw, l, next));
  }

  /**
   * Run the handler holding `lease`. The slot is held while the handler runs AND until the
   * response is done: 'finish' (last byte handed to the OS) or 'close' (connection dropped).
   * A streamed body keeps it until it ends; a client that disconnects mid-handler does not
   * free the slot while the handler still computes (the work is still on the machine).
   */
  private run(raw: ServerResponse, lease: Lease, next: CallHandler): Observable<unknown> {
    let handlerDone = false;
    let responseDone = false;
    const onResponseDone = (): void => {
      raw.off('finish', onResponseDone);
      raw.off('close', onResponseDone);
      responseDone = true;
      if (handlerDone) void lease.release();
    };
    raw.once('finish', onResponseDone);
    raw.once('close', onResponseDone);
    return next.handle().pipe(
      finalize(() => {
        handlerDone = true;
        if (responseDone) void lease.release();
      }),
    );
  }
}
