import { performance } from 'node:perf_hooks';
import { DRAIN_EWMA_WEIGHT } from '../storage/queue-order';

/** Gaps between grants measured before a deadline can be refused at arrival (warm-up). */
export const DRAIN_WARMUP_GAPS = 8;

/**
 * The drain rate of one pool's queue as this process sees it, for the deadline predictor: its
 * requests waiting for a slot now, and the average gap between two grants to them while one of
 * them waited (the measure `queueTargetMs` keeps in the stores: a gap spans only a non-empty
 * queue; the same EWMA weight, after a plain mean over the first gaps so a first gap of 0 from
 * a burst does not linger).
 *
 * Per process on purpose, also with Redis: in a FIFO queue shared by several workers, this
 * process's waiters are granted at its share of the global rate, so its own waiters ahead times
 * its own gap predicts its newcomer's wait without a round trip.
 */
export class QueueDrainMeter {
  private waiting = 0;
  private lastGrantAt: number | null = null;
  private drain: number | null = null;
  private gaps = 0;

  /**
   * Count a request as waiting while `acquiring` (its store acquire) is pending: granted when it
   * resolves `ok`, left without a slot otherwise (a rejection too, so no count is ever leaked).
   */
  track<T extends { ok: boolean }>(acquiring: Promise<T>): Promise<T> {
    this.entered();
    return acquiring.then(
      (result) => {
        this.left(result.ok, performance.now());
        return result;
      },
      (error: unknown) => {
        this.left(false, performance.now());
        throw error;
      },
    );
  }

  /** A request of this process starts waiting for a slot. */
  entered(): void {
    this.waiting++;
  }

  /** It stopped waiting at `now` (monotonic ms): granted a slot, or left without one. */
  left(granted: boolean, now: number): void {
    this.waiting = Math.max(0, this.waiting - 1);
    if (granted) {
      if (this.lastGrantAt !== null) this.sample(now - this.lastGrantAt);
      this.lastGrantAt = now;
    }
    if (this.waiting === 0) this.lastGrantAt = null;
  }

  /** Requests of this process waiting now. */
  get queued(): number {
    return this.waiting;
  }

  /** Average gap between grants, ms; `null` until the warm-up is over. */
  get drainMs(): number | null {
    return this.gaps >= DRAIN_WARMUP_GAPS ? this.drain : null;
  }

  /**
   * The wait of a request that would queue now behind the `queued` ones, ms: (queued + 1) x the
   * drain gap. `null` while nobody waits (a slot may be free: no prediction) or during warm-up.
   */
  predictedWaitMs(): number | null {
    const drain = this.drainMs;
    return drain === null || this.waiting === 0 ? null : (this.waiting + 1) * drain;
  }

  /** Seconds until the waiting requests are expected to have drained (`Retry-After`), >= 1. */
  retryAfterS(): number {
    return Math.max(1, Math.ceil((this.waiting * (this.drain ?? 0)) / 1000));
  }

  private sample(gap: number): void {
    this.gaps++;
    const weight = Math.max(DRAIN_EWMA_WEIGHT, 1 / this.gaps);
    this.drain = this.drain === null ? gap : (1 - weight) * this.drain + weight * gap;
  }
}
