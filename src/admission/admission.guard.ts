import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { PROBE_HEADER } from '../balancer/balancer.constants';
import { AdmissionEvents } from './admission-events';
import { AdmissionGate } from './admission-gate';
import { ADMISSION_STATE, releaseAdmission, type AdmissionState } from './admission-handler';
import {
  BalancerQueueTimeoutException,
  BalancerRejection,
  BalancerUnavailableException,
  ClientClosedRequestException,
} from './admission.exceptions';
import { CapacityStore, type Lease } from './capacity-store.interface';
import { PoolRegistry, type ResolvedPool } from './pool-registry';
import { ProbeSecret } from './probe-secret';

/** `Retry-After` seconds while shutting down: long enough for a load balancer to move on. */
const SHUTDOWN_RETRY_AFTER = 5;

interface RawRequest {
  headers: Record<string, string | string[] | undefined>;
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
  constructor(
    private readonly registry: PoolRegistry,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly gate: AdmissionGate,
    private readonly secret: ProbeSecret,
    private readonly events: AdmissionEvents,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const pool = this.registry.forHandler(context.getHandler());
    if (!pool) return true;

    const http = context.switchToHttp();
    const req = http.getRequest<RawRequest>();
    if (req.headers[PROBE_HEADER] !== undefined && this.secret.matches(req.headers[PROBE_HEADER])) {
      return true;
    }
    // Express hands us the ServerResponse itself; Fastify a reply wrapping it as `.raw`.
    const reply = http.getResponse<ServerResponse | { raw: ServerResponse }>();
    const raw: ServerResponse = 'raw' in reply ? reply.raw : reply;

    const closed = this.gate.closedReason;
    if (closed) {
      this.store.recordRejection(pool.key);
      this.events.emit(pool.key, closed, 0);
      const retry = closed === 'unhealthy' ? this.gate.unhealthyRetryAfter : SHUTDOWN_RETRY_AFTER;
      throw this.reject(raw, new BalancerUnavailableException(closed, retry));
    }

    // Fast path (memory store, free slot, nobody waiting): no promise, no abort wiring.
    const lease = this.store.tryAcquire?.(pool.key);
    if (lease) {
      this.events.emit(pool.key, 'admitted', 0);
      this.hold(req, raw, lease);
      return true;
    }
    return this.wait(req, raw, pool);
  }

  /** Wait in the pool's queue, leaving it if the client goes away. */
  private async wait(req: RawRequest, raw: ServerResponse, pool: ResolvedPool): Promise<boolean> {
    const abort = new AbortController();
    const onGone = (): void => {
      if (!raw.writableFinished) abort.abort();
    };
    raw.once('close', onGone);
    const result = await this.store.acquire(pool.key, {
      timeoutMs: pool.queueTimeoutMs,
      maxQueue: pool.maxQueue,
      signal: abort.signal,
    });
    raw.off('close', onGone);

    if (!result.ok) {
      this.events.emit(
        pool.key,
        result.reason === 'closed' ? this.closedOutcome() : result.reason,
        result.waitedMs,
      );
      throw this.rejection(raw, pool, result.reason, result.waitedMs);
    }
    this.events.emit(pool.key, 'admitted', result.waitedMs);
    if (raw.destroyed || raw.writableFinished) {
      // The client left between the grant and now: give the slot straight back.
      void result.lease.release();
      throw new ClientClosedRequestException();
    }
    this.hold(req, raw, result.lease);
    return true;
  }

  /**
   * Hold `lease` for this request. The handler wrapper marks when the handler runs and settles;
   * the response listeners here mark when the response is done. Whichever comes last releases.
   */
  private hold(req: RawRequest, raw: ServerResponse, lease: Lease): void {
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

  private closedOutcome(): 'unhealthy' | 'shutting_down' {
    return this.gate.isShuttingDown ? 'shutting_down' : 'unhealthy';
  }

  private rejection(
    raw: ServerResponse,
    pool: ResolvedPool,
    reason: 'queue_full' | 'timeout' | 'aborted' | 'closed',
    waitedMs: number,
  ): Error {
    switch (reason) {
      case 'aborted':
        return new ClientClosedRequestException();
      case 'timeout':
        return this.reject(
          raw,
          new BalancerQueueTimeoutException(waitedMs / 1000, pool.retryAfter),
        );
      case 'queue_full':
        return this.reject(raw, new BalancerUnavailableException('queue_full', pool.retryAfter));
      case 'closed': {
        const why = this.closedOutcome();
        const retry = why === 'unhealthy' ? this.gate.unhealthyRetryAfter : SHUTDOWN_RETRY_AFTER;
        return this.reject(raw, new BalancerUnavailableException(why, retry));
      }
    }
  }

  private reject(raw: ServerResponse, error: BalancerRejection): BalancerRejection {
    if (!raw.headersSent)
      raw.setHeader('Retry-After', String(Math.max(1, Math.ceil(error.retryAfter))));
    return error;
  }
}
