import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { CapacityStore } from '../storage/capacity-store.interface';
import { AdmissionEvents } from './admission-events';
import {
  BalancerDeadlineException,
  BalancerUnavailableException,
  type BalancerRejection,
} from './admission.exceptions';
import type { ResolvedPool } from './pool-registry';
import { QueueDrainMeter } from './queue-drain-meter';

/** Deadline rejections of one pool in this process. */
export interface DeadlineCounts {
  /** 504 `deadline`: the deadline passed while queued (or had passed on arrival). */
  expired: number;
  /** 503 `deadline_unreachable`: refused at arrival, the predicted wait exceeded the time left. */
  unreachable: number;
}

interface PoolDeadlines {
  meter: QueueDrainMeter;
  counts: DeadlineCounts;
}

/**
 * Admission's deadline rules, per pool and per process: a request whose deadline already passed
 * is answered 504 `deadline` without a slot; one whose predicted wait (the pool's measured drain,
 * see `QueueDrainMeter`) exceeds the time it has left is refused 503 `deadline_unreachable`; a
 * queued one leaves the queue at its deadline (the caller arms its wait with `deadlineSignal`).
 * A pool is metered from its first request that waits when it has a deadline source, else from
 * the first `BalancerService.run()` with a deadline that has to wait.
 */
@Injectable()
export class Deadlines {
  private readonly pools = new Map<string, PoolDeadlines>();

  constructor(
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly events: AdmissionEvents,
  ) {}

  /**
   * The drain meter of `pool` when the pool uses deadlines: it has a deadline source, or a
   * `run()` deadline reached its queue (else `undefined`: no cost).
   */
  meter(pool: ResolvedPool): QueueDrainMeter | undefined {
    return (pool.deadline ? this.of(pool.key) : this.pools.get(pool.key))?.meter;
  }

  /** The 504 for a deadline already past at arrival (counted), or `undefined`. */
  passed(pool: ResolvedPool, at: number): BalancerRejection | undefined {
    if (at > performance.now()) return undefined;
    this.events.emit(pool.key, 'deadline', 0);
    return this.expired(pool, 0);
  }

  /**
   * After the fast path found no free slot: the 503 `deadline_unreachable` (counted, with the
   * time the queue ahead takes to drain as `Retry-After`) when the predicted wait exceeds the
   * time left before `at`; `undefined` when it fits or nothing is measured yet.
   */
  unreachable(pool: ResolvedPool, at: number): BalancerRejection | undefined {
    const { meter, counts } = this.of(pool.key);
    const predicted = meter.predictedWaitMs();
    if (predicted === null || predicted <= at - performance.now()) return undefined;
    counts.unreachable++;
    this.store.recordRejection(pool.key);
    this.events.emit(pool.key, 'deadline_unreachable', 0);
    return new BalancerUnavailableException('deadline_unreachable', meter.retryAfterS());
  }

  /** The 504 of a request whose deadline passed while it waited (counted; the caller emits). */
  expired(pool: ResolvedPool, waitedMs: number): BalancerRejection {
    this.of(pool.key).counts.expired++;
    return new BalancerDeadlineException(waitedMs / 1000, pool.retryAfter);
  }

  /** Deadline rejections of `pool` in this process so far. */
  counts(pool: string): DeadlineCounts {
    const counts = this.pools.get(pool)?.counts;
    return counts ? { ...counts } : { expired: 0, unreachable: 0 };
  }

  private of(pool: string): PoolDeadlines {
    let found = this.pools.get(pool);
    if (!found) {
      found = { meter: new QueueDrainMeter(), counts: { expired: 0, unreachable: 0 } };
      this.pools.set(pool, found);
    }
    return found;
  }
}
