import { DRAIN_EWMA_WEIGHT, queueTargetIntervalMs } from '../queue-order';

/**
 * `queueTargetMs` of one pool (CoDel-like): tells a standing queue from a burst, from samples
 * taken when a waiter is granted from the queue, and keeps the observed drain interval.
 * Times are milliseconds on one monotonic clock (the store's `performance.now()`).
 *
 * - A grant that waited less than the target ends an above-target spell, unless the queue is
 *   already standing; the first one that waited longer starts one (`aboveSince`).
 * - The queue is standing (`shedding`) once the spell has lasted `queueTargetIntervalMs`, and
 *   stays standing until it empties: while it sheds, the waiters it lets in wait about the
 *   target, so their short waits say the shedding works, not that the overload is over.
 * - `drainMs`: average gap between consecutive grants from the queue (EWMA, weight
 *   `DRAIN_EWMA_WEIGHT` on the newest gap); a gap spans only a non-empty queue.
 */
export class OverloadTracker {
  private aboveSince: number | null = null;
  private lastGrantAt: number | null = null;
  private drain: number | null = null;

  /** `targetMs`: the latest target passed by an acquire (`retarget` updates it). */
  constructor(private targetMs: number) {}

  /** The target of the latest acquire that passed one. */
  retarget(targetMs: number): void {
    this.targetMs = targetMs;
  }

  /** A waiter was granted from the queue at `now` after waiting `waitedMs`. */
  granted(now: number, waitedMs: number): void {
    if (waitedMs >= this.targetMs) this.aboveSince ??= now;
    else if (!this.shedding(now)) this.aboveSince = null;
    if (this.lastGrantAt !== null) {
      const gap = now - this.lastGrantAt;
      this.drain =
        this.drain === null ? gap : (1 - DRAIN_EWMA_WEIGHT) * this.drain + DRAIN_EWMA_WEIGHT * gap;
    }
    this.lastGrantAt = now;
  }

  /** The queue has no waiter left: no spell, no gap in progress (the drain average stays). */
  emptied(): void {
    this.aboveSince = null;
    this.lastGrantAt = null;
  }

  /** Average gap between grants from the queue, ms; null until two grants were seen. */
  get drainMs(): number | null {
    return this.drain;
  }

  shedding(now: number): boolean {
    return (
      this.aboveSince !== null && now - this.aboveSince >= queueTargetIntervalMs(this.targetMs)
    );
  }

  /**
   * While shedding with a known drain interval: the number of waiters ahead from which a
   * newcomer is shed, i.e. the least `ahead` with (ahead + 1) x drainMs > target. Null when
   * nothing is shed (not shedding, drain unknown, or a drain interval of 0).
   */
  shedFromAhead(now: number): number | null {
    const drain = this.drain;
    if (drain === null || drain <= 0 || !this.shedding(now)) return null;
    return Math.floor(this.targetMs / drain);
  }

  /** `Retry-After` of a shed request: the time the `queued` waiters take to drain, >= 1 s. */
  retryAfterS(queued: number): number {
    return Math.max(1, Math.ceil((queued * (this.drain ?? 0)) / 1000));
  }

  snapshot(now: number): { shedding: boolean; drainMs: number | null } {
    return { shedding: this.shedding(now), drainMs: this.drain };
  }
}
