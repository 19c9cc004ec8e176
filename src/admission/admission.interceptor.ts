import { CallHandler, ExecutionContext, Inject, Injectable, NestInterceptor } from '@nestjs/common';
import { finalize, type Observable } from 'rxjs';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { AdmissionControl } from './admission-control';
import {
  admissionOf,
  attachAdmission,
  handlerEntered,
  handlerSettled,
  markPassed,
  type AdmissionState,
} from './admission-state';
import { ClientClosedRequestException } from './admission.exceptions';
import { UNRESOLVED } from './route-table';

/**
 * Admission control as a global interceptor, for routes watched only through `endpoints`
 * (YAML), and for every watched route with `admission: 'interceptor'`. `BalancerModule`
 * registers it only when such routes exist, so apps that watch routes with `@Balanced()` alone
 * pay nothing on their other routes. A watched request waits for a slot of its pool, runs, and
 * gives the slot back exactly once when both the handler and the response are done.
 */
@Injectable()
export class AdmissionInterceptor implements NestInterceptor {
  private readonly all: boolean;

  constructor(
    private readonly control: AdmissionControl,
    @Inject(BALANCER_OPTIONS) options: ResolvedBalancerOptions,
  ) {
    this.all = options.admission === 'interceptor';
  }

  intercept(
    context: ExecutionContext,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    const match = this.control.match(context);
    if (!match?.route) return next.handle();
    const { route, rawReq, raw } = match;
    if (route === UNRESOLVED) throw this.control.unresolved(context, rawReq, raw);
    // `@Balanced()` routes are the guard's unless admission is 'interceptor'.
    if (!this.all && route.decorated) return next.handle();
    const earlier = admissionOf(rawReq);
    if (earlier) return this.run(earlier, next);
    if (this.control.isProbe(route.pool.key, match.req)) {
      markPassed(rawReq);
      return next.handle();
    }
    const lease = this.control.admit({ pool: route.pool, req: match.req, rawReq, raw });
    if (!(lease instanceof Promise)) return this.run(attachAdmission(lease, rawReq, raw), next);
    return lease.then((l) => this.run(attachAdmission(l, rawReq, raw), next));
  }

  /**
   * Run the handler under `state`: the slot is held while the handler runs AND until the
   * response is done ('finish', or 'close' when the connection drops). A streamed body keeps it
   * until it ends; a client that disconnects mid-handler does not free it while work runs.
   */
  private run(state: AdmissionState, next: CallHandler): Observable<unknown> {
    // The connection closed after admission and the slot is already back: don't start work.
    if (state.released) throw new ClientClosedRequestException();
    handlerEntered(state);
    return next.handle().pipe(finalize(() => handlerSettled(state)));
  }
}
