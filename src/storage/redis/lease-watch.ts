import { performance } from 'node:perf_hooks';
import type { StoreContext } from './context';

/**
 * The renewal deadline of every held lease. A lease is proven until `expiresBy` (the send time of
 * the last command that renewed it, plus the lease TTL, on this process's monotonic clock). One
 * timer, at the earliest deadline less `lossMarginMs`: a lease still not renewed then is lost,
 * whatever the reason (Redis unreachable, a slow link, an event loop that stalled), so its
 * request's signal fires before the slot can be granted to anyone else.
 */
export class LeaseWatch {
  private timer?: NodeJS.Timeout;
  private at = Infinity;

  constructor(private readonly ctx: StoreContext) {}

  private get margin(): number {
    return this.ctx.tuning.lossMarginMs;
  }

  /** A new slot (or a later deadline): re-arm only when it comes sooner than the armed one. */
  watch(expiresBy: number): void {
    if (expiresBy - this.margin < this.at) this.arm(expiresBy - this.margin);
  }

  /** Lose every lease past its deadline, then arm for the next one. */
  check(): void {
    const now = performance.now();
    let next = Infinity;
    for (const p of this.ctx.pools.all()) {
      for (const s of p.slots) {
        if (s.lost || s.released) continue;
        const deadline = s.expiresBy - this.margin;
        if (deadline <= now)
          this.ctx.lose(
            p,
            s,
            `not renewed within ${Math.round(now - s.expiresBy + this.ctx.ttlMs)} ms`,
          );
        else next = Math.min(next, deadline);
      }
    }
    this.arm(next);
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.at = at;
    if (at === Infinity || this.ctx.isClosed()) return;
    this.timer = setTimeout(() => this.check(), Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.at = Infinity;
  }
}
