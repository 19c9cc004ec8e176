import { Inject, Injectable } from '@nestjs/common';
import { CapacityStore, type Lease } from '../storage/capacity-store.interface';
import { AdmissionEvents } from './admission-events';
import { AdmissionGate } from './admission-gate';
import { SHUTDOWN_RETRY_AFTER } from './admission-control';
import {
  BalancerQueueTimeoutException,
  BalancerUnavailableException,
  type BalancerRejection,
} from './admission.exceptions';
import { PoolRegistry, type ResolvedPool } from './pool-registry';

export interface BalancerRunOptions {
  /**
   * Gives up the wait: a caller aborted while queued leaves the queue, `fn` never runs and
   * `run()` rejects with `signal.reason`. Aborting after `fn` started does not free the slot
   * early (the work still runs); `fn` can watch the same signal to stop sooner.
   */
  signal?: AbortSignal;
}

/** `run()` was given a pool name that no watched route declares. */
export class BalancerPoolNotFoundError extends Error {
  constructor(
    readonly pool: string,
    readonly known: string[],
  ) {
    const list = known.length ? known.map((k) => `"${k}"`).join(', ') : 'none';
    super(
      `BalancerService.run(): no pool named "${pool}" (known pools: ${list}). A pool is a ` +
        "watched route's path or a name given with @Balanced({ pool }) or endpoints[path].pool; " +
        'pools are known once the application has initialised.',
    );
    this.name = 'BalancerPoolNotFoundError';
  }
}

/**
 * Admission for work that is not an HTTP request: GraphQL resolvers, WebSocket gateways,
 * microservice handlers, queue consumers. `run()` takes a slot of a pool exactly as a watched
 * route does (same gate, FIFO queue, queue timeout, `maxQueue`, counters, events and store, so
 * in Redis mode the cap is global), runs `fn`, and gives the slot back once `fn` has settled.
 *
 * ```ts
 * constructor(private readonly balancer: BalancerService) {}
 * generate(prompt: string, signal?: AbortSignal) {
 *   return this.balancer.run('gpu', () => this.model.generate(prompt), { signal });
 * }
 * ```
 * Rejections: `BalancerUnavailableException` (503-equivalent; `reason` `unhealthy`,
 * `shutting_down` or `queue_full`), `BalancerQueueTimeoutException` (504-equivalent),
 * `signal.reason` when aborted, `BalancerPoolNotFoundError` for an unknown pool. Whatever `fn`
 * throws is rethrown unchanged.
 */
@Injectable()
export class BalancerService {
  constructor(
    private readonly registry: PoolRegistry,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly gate: AdmissionGate,
    private readonly events: AdmissionEvents,
  ) {}

  async run<T>(
    pool: string,
    fn: () => T | PromiseLike<T>,
    options: BalancerRunOptions = {},
  ): Promise<Awaited<T>> {
    const resolved = this.registry.get(pool);
    if (!resolved) {
      throw new BalancerPoolNotFoundError(
        pool,
        this.registry.all().map((p) => p.key),
      );
    }
    options.signal?.throwIfAborted();
    const lease = await this.acquire(resolved, options.signal);
    try {
      return await fn();
    } finally {
      void lease.release();
    }
  }

  private async acquire(pool: ResolvedPool, signal: AbortSignal | undefined): Promise<Lease> {
    const closed = this.gate.closedReason;
    if (closed) {
      this.store.recordRejection(pool.key);
      this.events.emit(pool.key, closed, 0);
      throw this.closedError(closed);
    }
    const fast = this.store.tryAcquire?.(pool.key);
    if (fast) {
      this.events.emit(pool.key, 'admitted', 0);
      return fast;
    }
    const result = await this.store.acquire(pool.key, {
      timeoutMs: pool.queueTimeoutMs,
      maxQueue: pool.maxQueue,
      signal,
    });
    if (result.ok) {
      this.events.emit(pool.key, 'admitted', result.waitedMs);
      if (signal?.aborted) {
        // Aborted between the grant and now: the caller is gone, give the slot straight back.
        void result.lease.release();
        throw signal.reason;
      }
      return result.lease;
    }
    const why = result.reason === 'closed' ? this.closedReasonNow() : result.reason;
    this.events.emit(pool.key, why, result.waitedMs);
    switch (why) {
      case 'aborted':
        throw signal?.reason ?? new DOMException('The wait for a slot was aborted', 'AbortError');
      case 'timeout':
        throw new BalancerQueueTimeoutException(result.waitedMs / 1000, pool.retryAfter);
      case 'queue_full':
        throw new BalancerUnavailableException('queue_full', pool.retryAfter);
      default:
        throw this.closedError(why);
    }
  }

  private closedReasonNow(): 'unhealthy' | 'shutting_down' {
    return this.gate.isShuttingDown ? 'shutting_down' : 'unhealthy';
  }

  private closedError(reason: 'unhealthy' | 'shutting_down'): BalancerRejection {
    const retry = reason === 'unhealthy' ? this.gate.unhealthyRetryAfter : SHUTDOWN_RETRY_AFTER;
    return new BalancerUnavailableException(reason, retry);
  }
}
