import { CallHandler, ExecutionContext, Inject, Injectable, NestInterceptor } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { finalize, type Observable } from 'rxjs';
import { PROBE_HEADER } from '../balancer/balancer.constants';
import { AdmissionEvents } from './admission-events';
import { AdmissionGate } from './admission-gate';
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
}

/**
 * Admission control for watched routes (registered globally by `BalancerModule`).
 * Unwatched routes cost one map lookup. A watched request waits for a slot of its pool, runs,
 * and gives the slot back exactly once when the response finishes or the connection closes.
 */
@Injectable()
export class AdmissionInterceptor implements NestInterceptor {
  constructor(
    private readonly registry: PoolRegistry,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly gate: AdmissionGate,
    private readonly secret: ProbeSecret,
    private readonly events: AdmissionEvents,
  ) {}

  intercept(
    context: ExecutionContext,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const pool = this.registry.forHandler(context.getHandler());
    if (!pool) return next.handle();

    const http = context.switchToHttp();
    const req = http.getRequest<RawRequest>();
    if (req.headers[PROBE_HEADER] !== undefined && this.secret.matches(req.headers[PROBE_HEADER])) {
      return next.handle();
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
      return this.run(raw, lease, next);
    }
    return this.wait(raw, pool, next);
  }

  /** Wait in the pool's queue, leaving it if the client goes away. */
  private async wait(
    raw: ServerResponse,
    pool: ResolvedPool,
    next: CallHandler,
  ): Promise<Observable<unknown>> {
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
    return this.run(raw, result.lease, next);
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
