import { ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PROBE_HEADER } from '../config/balancer.constants';
import { AdmissionEvents } from './admission-events';
import { AdmissionGate } from './admission-gate';
import {
  BalancerQueueTimeoutException,
  BalancerRejection,
  BalancerUnavailableException,
  ClientClosedRequestException,
} from './admission.exceptions';
import { CapacityStore, type Lease } from '../storage/capacity-store.interface';
import { normalizePriority, normalizeTenant } from '../storage/queue-order';
import type { PolicyAcquireOptions } from './overload-policy';
import type { ResolvedPool } from './pool-registry';
import { RouteTable } from './route-table';
import { matchHttp, type HttpMatch, type RawRequest } from './http-match';
import { withRetryAfter } from './retry-after';
import { declaredBodyBytes, QueuedBodyBytes } from './body-budget';
import { probePass, ProbeTokens } from './probe-tokens';
import { UnresolvedRoutes } from './admission-misses';
import { Deadlines } from './deadlines';
import { deadlineSignal, firedAtDeadline, setRequestDeadline } from './request-deadline';

/** `Retry-After` seconds while shutting down: long enough for a load balancer to move on. */
export const SHUTDOWN_RETRY_AFTER = 5;

/** What `admit()` needs: the pool, the request (as Nest and as Node see it), the raw response. */
export interface AdmissionRequest {
  pool: ResolvedPool;
  req: RawRequest;
  /** The Node request: what a tenant or priority function receives. */
  rawReq: IncomingMessage;
  raw: ServerResponse;
  /** Admitted before the body was read (early admission): no body bytes wait in memory. */
  bodyUnread?: boolean;
}

/**
 * Steps 1-3 of admission, shared by `AdmissionGuard` and `AdmissionInterceptor` (they differ
 * only in how they learn that the handler is done): which requests it applies to, the health
 * gate, and taking a slot at once or after a wait in the pool's queue, with the rejections.
 */
@Injectable()
export class AdmissionControl {
  constructor(
    private readonly table: RouteTable,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly gate: AdmissionGate,
    private readonly tokens: ProbeTokens,
    private readonly events: AdmissionEvents,
    private readonly bodies: QueuedBodyBytes,
    private readonly misses: UnresolvedRoutes = new UnresolvedRoutes(),
    private readonly deadlines: Deadlines = new Deadlines(store, events),
  ) {}

  /**
   * The raw request and response of an HTTP context, and the route it is on in the route table
   * (`matchHttp`); `undefined` outside HTTP.
   */
  match(context: ExecutionContext): HttpMatch | undefined {
    return matchHttp(context, this.table);
  }

  /**
   * A request on a watched handler the route table cannot place: counted and logged, answered
   * 503 `unresolved_route` with `Retry-After` (fail closed, never an uncounted pass-through).
   */
  unresolved(context: ExecutionContext, rawReq: IncomingMessage, raw: ServerResponse): unknown {
    const cls = (context.getClass() as { name?: string }).name ?? 'controller';
    const route = `${cls}.${context.getHandler().name}`;
    return withRetryAfter(raw, () =>
      this.misses.reject(route, rawReq.method ?? 'GET', rawReq.url ?? ''),
    );
  }

  /**
   * `true` for the balancer's own probe requests whose token this process knows (they bypass
   * admission). A well-formed token it does not know yet is checked against the store by
   * `admit()`.
   */
  isProbe(pool: string, req: RawRequest): boolean {
    const probe = req.headers[PROBE_HEADER];
    return probe !== undefined && this.tokens.accepts(pool, probe);
  }

  /**
   * A slot for the request: a lease at once (fast path: free slot, nobody waiting; no promise,
   * no abort wiring), or a promise of one after a wait in the queue. Throws (or rejects with)
   * the 503 / 504 / client-closed exception when the request cannot be admitted.
   */
  admit(request: AdmissionRequest): Lease | Promise<Lease> {
    // A probe token not cached here may belong to a probe another worker just started: ask the
    // store (rate-limited); a token it does not hold is admitted like any other request.
    const probe = request.req.headers[PROBE_HEADER];
    if (ProbeTokens.wellFormed(probe)) {
      return this.tokens
        .verify(request.pool.key, probe)
        .then((ok) => (ok ? probePass(request.pool.key) : this.take(request)));
    }
    return this.take(request);
  }

  private take({ pool, req, rawReq, raw, bodyUnread }: AdmissionRequest): Lease | Promise<Lease> {
    // Overload policies cost nothing on a pool without them. With a tenant source the tenant
    // is read before the fast path too (the store counts admissions per tenant); the priority
    // only when the request has to queue.
    const policy = pool.overload;
    const tenant = policy?.hasTenant ? policy.tenantOf(rawReq) : undefined;
    // A costed pool reads the request's units first: a cost it cannot read is a 400 before
    // anything is reserved.
    const units = pool.cost?.unitsOf(rawReq, this.events);
    const deadline = pool.deadline?.deadlineOf(rawReq);
    if (deadline !== undefined) {
      setRequestDeadline(rawReq, pool.key, deadline);
      const passed = this.deadlines.passed(pool, deadline);
      if (passed) throw withRetryAfter(raw, () => passed);
    }
    // The common case first, with nothing allocated: the gate is open and a slot is free.
    const free =
      this.gate.closedReason === null ? this.fastPath(pool.key, tenant, units) : undefined;
    if (free) {
      this.events.emit(pool.key, 'admitted', 0);
      return free;
    }
    const lease = withRetryAfter(raw, () => this.immediate(pool, tenant, units));
    if (lease) return lease;
    const late = deadline === undefined ? undefined : this.deadlines.unreachable(pool, deadline);
    if (late) throw withRetryAfter(raw, () => late);
    // Waiting with a body already read into memory: bounded by the pool's byte budget.
    const bytes = bodyUnread ? 0 : declaredBodyBytes(req.headers);
    if (!this.bodies.reserve(pool.key, bytes, pool.maxQueueBytes ?? 0)) {
      throw withRetryAfter(raw, () => this.refuse(pool, 'queue_full'));
    }
    const options = policy?.acquireOptions(tenant, policy.priorityOf(rawReq));
    const waiting = this.wait(raw, pool, options, deadline, units);
    return bytes === 0 ? waiting : waiting.finally(() => this.bodies.release(pool.key, bytes));
  }

  /** Wait in the pool's queue, leaving it if the client goes away or its deadline passes. */
  private async wait(
    raw: ServerResponse,
    pool: ResolvedPool,
    policy: PolicyAcquireOptions | undefined,
    deadline: number | undefined,
    units: number | undefined,
  ): Promise<Lease> {
    const abort = new AbortController();
    const onGone = (): void => {
      if (!raw.writableFinished) abort.abort();
    };
    raw.once('close', onGone);
    const timed =
      deadline === undefined ? undefined : deadlineSignal(deadline, pool.key, abort.signal);
    try {
      const lease = await this.queue(
        pool,
        timed?.signal ?? abort.signal,
        () => new ClientClosedRequestException(),
        policy,
        units,
      );
      if (raw.destroyed || raw.writableFinished) {
        // The client left between the grant and now: give the slot straight back.
        void lease.release();
        throw new ClientClosedRequestException();
      }
      return lease;
    } catch (error) {
      throw withRetryAfter(raw, () => error);
    } finally {
      raw.off('close', onGone);
      timed?.disarm();
    }
  }

  /**
   * A slot of `pool` for work that is not an HTTP request (`BalancerService.run`): the same gate,
   * fast path, queue, counters and rejections. Aborting `signal` while queued leaves the queue
   * and rejects with `signal.reason`; a slot granted to an aborted caller goes straight back.
   * `caller.tenant` / `caller.priority` place the work in the pool's queue like a request's
   * (normalised the same way), with the pool's `priorityAging`, `maxQueuePerTenant` and
   * `queueTargetMs`. `caller.deadline` (monotonic ms) applies the deadline rules of a request.
   */
  acquire(
    pool: ResolvedPool,
    signal?: AbortSignal,
    caller: { tenant?: string; priority?: number; deadline?: number; units?: number } = {},
  ): Lease | Promise<Lease> {
    signal?.throwIfAborted();
    const deadline = caller.deadline;
    const passed = deadline === undefined ? undefined : this.deadlines.passed(pool, deadline);
    if (passed) throw passed;
    const tenant = normalizeTenant(caller.tenant);
    const units = caller.units ?? (pool.cost ? 1 : undefined);
    const lease = this.immediate(pool, tenant, units);
    if (lease) return lease;
    const late = deadline === undefined ? undefined : this.deadlines.unreachable(pool, deadline);
    if (late) throw late;
    const aborted = (): unknown =>
      signal?.reason ?? new DOMException('The wait for a slot was aborted', 'AbortError');
    const priority = normalizePriority(caller.priority);
    const policy =
      pool.overload?.acquireOptions(tenant, priority) ??
      (tenant !== undefined || priority !== 0 ? { tenant, priority } : undefined);
    const timed = deadline === undefined ? undefined : deadlineSignal(deadline, pool.key, signal);
    return this.queue(pool, timed?.signal ?? signal, aborted, policy, units)
      .then((granted) => {
        if (!signal?.aborted) return granted;
        void granted.release();
        throw aborted();
      })
      .finally(() => timed?.disarm());
  }

  /**
   * Gate closed: the 503 (counted). Else a slot at once when one is free and nobody waits
   * (`tenant`, when known, for the store's per-tenant admitted counts).
   */
  private immediate(
    pool: ResolvedPool,
    tenant: string | undefined,
    units: number | undefined,
  ): Lease | undefined {
    const closed = this.gate.closedReason;
    if (closed) throw this.refuse(pool, closed);
    const lease = this.fastPath(pool.key, tenant, units) ?? undefined;
    if (lease) this.events.emit(pool.key, 'admitted', 0);
    return lease;
  }

  /**
   * Wait in the pool's queue (placed by `policy`: tenant, priority, per-tenant bound, queue
   * target); rejects with the 503/504, or `aborted()` when `signal` fired.
   */
  private async queue(
    pool: ResolvedPool,
    signal: AbortSignal | undefined,
    aborted: () => unknown,
    policy: PolicyAcquireOptions | undefined,
    units: number | undefined,
  ): Promise<Lease> {
    const acquiring = this.store.acquire(pool.key, {
      ...policy,
      timeoutMs: pool.queueTimeoutMs,
      maxQueue: pool.maxQueue,
      signal,
      // Only a costed request names units: the others ask the store what they always did.
      ...(units === undefined ? undefined : { cost: units, maxQueueCost: pool.cost?.maxQueueCost }),
    });
    const result = await (this.deadlines.meter(pool)?.track(acquiring) ?? acquiring);
    if (result.ok) {
      this.events.emit(pool.key, 'admitted', result.waitedMs);
      return result.lease;
    }
    const why =
      result.reason === 'closed'
        ? this.closedOutcome()
        : result.reason === 'aborted' && firedAtDeadline(signal)
          ? 'deadline'
          : result.reason;
    this.events.emit(pool.key, why, result.waitedMs);
    switch (why) {
      case 'deadline':
        throw this.deadlines.expired(pool, result.waitedMs);
      case 'aborted':
        throw aborted();
      case 'timeout':
        throw new BalancerQueueTimeoutException(result.waitedMs / 1000, pool.retryAfter);
      case 'queue_full':
      case 'tenant_queue_full':
      case 'queue_cost_full':
        throw new BalancerUnavailableException(why, pool.retryAfter);
      case 'shed':
        throw new BalancerUnavailableException('shed', result.retryAfterS ?? pool.retryAfter);
      default:
        throw this.unavailable(why);
    }
  }

  /** The store's fast path (`units` only for a costed request). */
  private fastPath(key: string, tenant: string | undefined, units: number | undefined) {
    const store = this.store;
    return units === undefined
      ? store.tryAcquire?.(key, tenant)
      : store.tryAcquire?.(key, tenant, units);
  }

  /** A rejection before the queue (gate closed, byte budget spent): counted, then thrown. */
  private refuse(
    pool: ResolvedPool,
    why: 'unhealthy' | 'shutting_down' | 'queue_full',
  ): BalancerRejection {
    this.store.recordRejection(pool.key);
    this.events.emit(pool.key, why, 0);
    return why === 'queue_full'
      ? new BalancerUnavailableException('queue_full', pool.retryAfter)
      : this.unavailable(why);
  }

  private unavailable(why: 'unhealthy' | 'shutting_down'): BalancerRejection {
    const retry = why === 'unhealthy' ? this.gate.unhealthyRetryAfter : SHUTDOWN_RETRY_AFTER;
    return new BalancerUnavailableException(why, retry);
  }

  private closedOutcome(): 'unhealthy' | 'shutting_down' {
    return this.gate.isShuttingDown ? 'shutting_down' : 'unhealthy';
  }
}
