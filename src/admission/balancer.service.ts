import { Injectable } from '@nestjs/common';
import { checkUnits } from '../storage/cost-units';
import { AdmissionControl } from './admission-control';
import { reservationOf, type CostReservation } from './cost-reservation.decorator';
import { NEVER_ABORTED } from './lease-signal.decorator';
import { PoolRegistry } from './pool-registry';
import { deadlineAt, deadlineSignal } from './request-deadline';

export interface BalancerRunOptions {
  /**
   * Gives up the wait: a caller aborted while queued leaves the queue, `fn` never runs and
   * `run()` rejects with `signal.reason`. Aborting after `fn` started does not free the slot
   * early (the work still runs); `fn` can watch the same signal to stop sooner.
   */
  signal?: AbortSignal;
  /**
   * Tenant of this work (e.g. the API key or customer id it runs for): queued work is served
   * round-robin across tenants, and the pool's `maxQueuePerTenant` bounds each. Cut to 64
   * characters, control characters replaced; `undefined` is the shared default tenant.
   */
  tenant?: string;
  /** Priority of this work (integer, higher first, default 0), aged by the pool's `priorityAging`. */
  priority?: number;
  /**
   * Deadline of this work: the milliseconds its caller still waits (number), or an absolute
   * `Date`. Work already past it rejects with `BalancerDeadlineException` at once; work whose
   * predicted wait exceeds it with `BalancerUnavailableException` (`deadline_unreachable`); queued
   * work leaves the queue at it (`BalancerDeadlineException`); and the signal `fn` receives
   * aborts at it with a `DeadlineExceededError`. Unset, non-finite or beyond 2^31 - 1 ms: none.
   */
  deadline?: number | Date;
  /**
   * Units this work holds while it runs (tokens, pixels, bytes): a positive number, fractions
   * rounded up; the pool's capacity counts units (docs/cost-and-deadlines.md). Anything else
   * rejects with `InvalidCostError` before the pool is touched. `fn`'s second argument corrects
   * it while it runs. @default 1
   */
  cost?: number;
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
 *   return this.balancer.run('gpu', (lost) => this.model.generate(prompt, { signal: lost }), { signal });
 * }
 * ```
 * `fn` receives the slot's signal: aborted when the slot can no longer be proven while `fn`
 * runs (Redis: its lease could not be renewed before it expired) or shutdown gave it back (its
 * reason is a `LeaseLostError`), and, with `options.deadline`, when the deadline passes (its
 * reason is a `DeadlineExceededError`).
 * Rejections: `BalancerUnavailableException` (503-equivalent; `reason` `unhealthy`,
 * `shutting_down`, `queue_full`, `tenant_queue_full`, `queue_cost_full`, `shed` or
 * `deadline_unreachable`), `BalancerQueueTimeoutException` and `BalancerDeadlineException`
 * (504-equivalents), `InvalidCostError` for a bad `cost`,
 * `signal.reason` when aborted, `BalancerPoolNotFoundError` for an unknown pool. Whatever `fn`
 * throws is rethrown unchanged.
 */
@Injectable()
export class BalancerService {
  constructor(
    private readonly registry: PoolRegistry,
    private readonly control: AdmissionControl,
  ) {}

  async run<T>(
    pool: string,
    fn: (signal: AbortSignal, reservation: CostReservation) => T | PromiseLike<T>,
    options: BalancerRunOptions = {},
  ): Promise<Awaited<T>> {
    const resolved = this.registry.get(pool);
    if (!resolved) {
      throw new BalancerPoolNotFoundError(
        pool,
        this.registry.all().map((p) => p.key),
      );
    }
    const deadline = deadlineAt(options.deadline);
    const units = options.cost === undefined ? undefined : checkUnits(options.cost, 'run() cost');
    const lease = await this.control.acquire(resolved, options.signal, {
      ...options,
      deadline,
      units,
    });
    const timed = deadline === undefined ? undefined : deadlineSignal(deadline, pool);
    const lost = lease.signal ?? NEVER_ABORTED;
    try {
      return await fn(timed ? AbortSignal.any([lost, timed.signal]) : lost, reservationOf(lease));
    } finally {
      timed?.disarm();
      void lease.release();
    }
  }
}
