import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { AdmissionControl } from './admission-control';
import { admissionOf, attachAdmission, markPassed } from './admission-state';
import { UNRESOLVED } from './route-table';

/**
 * Admission control for `@Balanced()` routes (the decorator puts this guard on them, after the
 * app's global and controller guards). It takes a slot of the route's pool, or waits for one
 * in the queue, and leaves the admission on the raw request; the decorator's method wrapper
 * marks when the handler runs and settles, and the slot goes back exactly once when the handler
 * is done (or was never entered) AND the response is done.
 *
 * A request admitted earlier (early admission, before body parsing) is not admitted again; one
 * the route table cannot place fails closed (503 `unresolved_route`, counted in health).
 * With `admission: 'interceptor'` it lets every request through to `AdmissionInterceptor`.
 */
@Injectable()
export class AdmissionGuard implements CanActivate {
  private readonly byInterceptor: boolean;

  constructor(
    private readonly control: AdmissionControl,
    @Inject(BALANCER_OPTIONS) options: ResolvedBalancerOptions,
  ) {
    this.byInterceptor = options.admission === 'interceptor';
  }

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const match = this.control.match(context);
    if (!match || this.byInterceptor || admissionOf(match.rawReq)) return true;
    const { route, rawReq, raw } = match;
    if (route === UNRESOLVED) throw this.control.unresolved(context, rawReq, raw);
    if (!route || this.control.isProbe(route.pool.key, match.req)) {
      markPassed(rawReq);
      return true;
    }
    const lease = this.control.admit({ pool: route.pool, req: match.req, rawReq, raw });
    if (!(lease instanceof Promise)) {
      attachAdmission(lease, rawReq, raw);
      return true;
    }
    return lease.then((l) => {
      attachAdmission(l, rawReq, raw);
      return true;
    });
  }
}
