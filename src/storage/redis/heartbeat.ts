import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { StoreContext } from './context';
import type { PoolState } from './pool-state';
import type { GlobalQueue } from './queue-waiter';

export function freshEpoch(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Keeps this process's leases, waiters and worker entry alive: one HEARTBEAT per pool, all
 * pools sent at once (one round trip on the wire however many pools there are). A beat that
 * reached every pool confirms the leases: the fallback window is measured from its send time.
 */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private beating = false;
  /** Send time (monotonic) of the last beat every pool answered. */
  confirmedAt = performance.now();

  constructor(
    private readonly ctx: StoreContext,
    private readonly queue: GlobalQueue,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.beatAll(), this.ctx.tuning.heartbeatMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async beatAll(): Promise<void> {
    if (this.ctx.mode() !== 'online' || this.beating || this.ctx.isClosed()) return;
    this.beating = true;
    const sentAt = performance.now();
    try {
      await Promise.all(this.ctx.pools.all().map((p) => this.beat(p, sentAt)));
      this.confirmedAt = sentAt;
    } catch (err) {
      this.ctx.degrade(err);
    } finally {
      this.beating = false;
    }
  }

  /** One pool (also used to register a new pool at once). */
  async beat(p: PoolState, sentAt = performance.now()): Promise<void> {
    const slots = [...p.slots];
    const known = p.settings();
    const [workers, capacity, missing, source, epoch] = await this.ctx
      .runner()
      .script<[number, number, number, string, string]>('balancerHeartbeat', p.keys.script, [
        ...this.ctx.common(),
        this.ctx.processId,
        p.epoch,
        freshEpoch(),
        this.ctx.ttlMs,
        known.capacity,
        known.source,
        slots.length,
        ...slots.map((s) => s.id),
        ...this.queue.liveIds(p),
      ]);
    for (const s of slots)
      if (!s.released) s.expiresBy = Math.max(s.expiresBy, sentAt + this.ctx.ttlMs);
    p.workers = Math.max(1, workers);
    p.learn(capacity, source);
    if (p.epoch && epoch !== p.epoch)
      this.ctx.warn(`Redis lost the state of ${p.name} (restart?); its slots were recorded again`);
    p.epoch = epoch;
    if (missing > 0 && p.epoch === epoch) {
      this.ctx.warn(
        `${missing} lease(s) of ${p.name} had expired in Redis (event loop stalled past leaseTtl?); recorded again`,
      );
    }
  }
}
