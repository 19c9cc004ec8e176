import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { StoreContext } from './context';
import type { LeaseWatch } from './lease-watch';
import { slotArg, type PoolState, type Slot } from './pool-state';
import type { GlobalQueue } from './queue-waiter';

export function freshEpoch(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Keeps this process's leases, waiters and worker entry alive: one HEARTBEAT per pool, all
 * pools sent at once (one round trip on the wire however many pools there are). A beat that
 * reached every pool confirms the leases: the fallback window is measured from its send time.
 *
 * A beat that comes due while the previous one is still in flight is sent as soon as that one
 * answers (never skipped), so two renewals are at most `heartbeatMs` + one command apart. A
 * lease Redis no longer has is lost, never recorded again over a slot granted to someone else.
 */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private beating = false;
  /** A beat came due while one was in flight. */
  private due = false;
  /** Send time (monotonic) of the last beat every pool answered. */
  confirmedAt = performance.now();

  constructor(
    private readonly ctx: StoreContext,
    private readonly queue: GlobalQueue,
    private readonly watch: LeaseWatch,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.beatAll(), this.ctx.tuning.heartbeatMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async beatAll(): Promise<void> {
    if (this.ctx.mode() !== 'online' || this.ctx.isClosed()) return;
    if (this.beating) {
      this.due = true;
      return;
    }
    this.beating = true;
    // Leases past their deadline are lost before the beat, not renewed by it.
    this.watch.check();
    const sentAt = performance.now();
    try {
      await Promise.all(this.ctx.pools.all().map((p) => this.beat(p, sentAt)));
      this.confirmedAt = sentAt;
    } catch (err) {
      this.ctx.degrade(err);
    } finally {
      this.beating = false;
    }
    if (this.due) {
      this.due = false;
      await this.beatAll();
    }
  }

  /** One pool (also used to register a new pool at once). */
  async beat(p: PoolState, sentAt = performance.now()): Promise<void> {
    const slots = [...p.slots].filter((s) => !s.lost);
    const known = p.settings();
    const [workers, capacity, lost, source, epoch] = await this.ctx
      .runner()
      .script<[number, number, string[], string, string]>('balancerHeartbeat', p.keys.script, [
        ...this.ctx.common(),
        this.ctx.processId,
        p.epoch,
        freshEpoch(),
        this.ctx.tuning.restartHoldMs,
        known.capacity,
        known.source,
        slots.length,
        ...slots.map(slotArg),
        ...this.queue.liveIds(p),
      ]);
    if (p.epoch && epoch !== p.epoch)
      this.ctx.warn(`Redis lost or replaced the state of ${p.name} (restart, failover?)`);
    p.epoch = epoch;
    p.workers = Math.max(1, workers);
    p.learn(capacity, source);
    renewed(this.ctx, p, slots, lost, sentAt);
    this.watch.check();
  }
}

/**
 * Apply a renewal: the leases Redis kept live `ttlMs` from `sentAt` on; the ones it reports lost
 * (expired there, or gone with its state after the hold) lose their slot.
 */
export function renewed(
  ctx: StoreContext,
  p: PoolState,
  slots: Slot[],
  lost: string[],
  sentAt: number,
): void {
  const gone = new Set(lost);
  for (const s of slots) {
    if (s.released || s.lost) continue;
    if (gone.has(s.id)) ctx.lose(p, s, 'Redis no longer had it');
    else s.expiresBy = Math.max(s.expiresBy, sentAt + ctx.ttlMs);
  }
}
