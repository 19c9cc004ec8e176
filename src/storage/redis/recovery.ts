import { performance } from 'node:perf_hooks';
import { message } from './command-runner';
import { jitter, type StoreContext, type StoreMode } from './context';
import type { LocalFallback } from './fallback';
import type { Heartbeat } from './heartbeat';
import { freshEpoch, renewed } from './heartbeat';
import { slotArg, type PoolState, type Slot } from './pool-state';
import type { RedisProbeLocks } from './probe-lock';
import type { GlobalQueue } from './queue-waiter';

/**
 * The store's mode as an explicit state machine:
 *
 *   online --(a command fails)--> fallback --(window over)--> expired
 *   fallback | expired --(Redis answers)--> recovering --(every ADOPT answered)--> online
 *   recovering --(an ADOPT fails)--> fallback (window still open) | expired
 *
 * A recovery is one ADOPT per pool, all sent at once: each atomically puts back the pool's
 * settings, records the slots this process runs and drops the ones it no longer uses. Nothing
 * is admitted locally while it is in flight, and a slot released meanwhile is released in Redis
 * after the answer, so healing leaves no slot recorded that nobody holds.
 */
export class Recovery {
  private state: StoreMode = 'expired';
  private timer?: NodeJS.Timeout;
  /** Slots released while the ADOPT that records them was in flight. */
  private deferred: Array<{ p: PoolState; id: string }> = [];

  constructor(
    private readonly ctx: StoreContext,
    private readonly parts: {
      fallback: LocalFallback;
      heartbeat: Heartbeat;
      queue: GlobalQueue;
      probes: RedisProbeLocks;
    },
  ) {}

  get mode(): StoreMode {
    return this.state;
  }

  /** Connected at startup. */
  online(): void {
    this.state = 'online';
  }

  /** Not connected at startup: cut off with nothing held. */
  startCutOff(): void {
    this.state = 'fallback';
    this.parts.fallback.enter(performance.now());
    this.schedule();
  }

  degrade(err: unknown): void {
    if (this.state !== 'online' || this.ctx.isClosed()) return;
    this.state = 'fallback';
    this.ctx.warn(
      `Redis unreachable (${message(err)}); reusing this worker's slots for at most ${this.ctx.tuning.fallbackWindowMs} ms after its last heartbeat, then answering 503 until Redis returns`,
    );
    // The window first: the waiters moved to local admission are judged by it.
    this.parts.fallback.enter(this.parts.heartbeat.confirmedAt);
    this.parts.queue.allToLocal();
    this.schedule();
  }

  /** The fallback window is over. */
  expired(): void {
    if (this.state !== 'fallback') return;
    this.state = 'expired';
    this.ctx.warn('fallback window over; answering 503 until Redis is reachable');
    this.parts.fallback.expire();
  }

  /** A slot released while not online. */
  released(p: PoolState, slot: Slot): void {
    if (this.state === 'recovering') this.deferred.push({ p, id: slot.id });
    else if (this.state === 'fallback') this.parts.fallback.reuse(p, slot);
    else p.orphans.add(slot.id);
  }

  schedule(delay = jitter(this.ctx.tuning.recoverMs)): void {
    if (this.timer || this.ctx.isClosed() || this.state === 'online') return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.recover().then((ok) => {
        if (!ok) this.schedule();
      });
    }, delay);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** Put this process's state back into Redis and switch admission back to it. */
  async recover(): Promise<boolean> {
    if (this.state === 'online' || this.ctx.isClosed()) return true;
    if (this.state === 'recovering' || !this.ctx.runner().ready) return false;
    const before = this.state;
    this.state = 'recovering';
    this.parts.fallback.pause();
    const sentAt = performance.now();
    const pools = this.ctx.pools.all();
    const results = await Promise.allSettled(pools.map((p) => this.adopt(p, sentAt)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const deferred = this.deferred.splice(0);
    if (this.ctx.isClosed()) return true;
    if (failed) {
      this.ctx.log(`Redis recovery failed: ${message(failed.reason)}`);
      for (const { p, id } of deferred) p.orphans.add(id);
      const open = before === 'fallback' && performance.now() < this.parts.fallback.windowEnd;
      this.state = open ? 'fallback' : 'expired';
      if (open) this.parts.fallback.resume();
      else this.parts.fallback.expire();
      return false;
    }
    this.state = 'online';
    this.parts.heartbeat.confirmedAt = sentAt;
    this.parts.fallback.migrateAll();
    const byPool = new Map<PoolState, string[]>();
    for (const { p, id } of deferred) byPool.set(p, [...(byPool.get(p) ?? []), id]);
    for (const [p, ids] of byPool) {
      this.ctx
        .runner()
        .script('balancerRelease', p.keys.script, [...this.ctx.common(), ...ids])
        .catch((err: unknown) => {
          ids.forEach((id) => p.orphans.add(id));
          this.ctx.degrade(err);
        });
    }
    for (const p of pools) await this.parts.probes.flush(p.name, p.keys).catch(() => undefined);
    this.ctx.log('Redis reachable again; admission is global again');
    if (this.parts.queue.size > 0) this.parts.queue.schedulePoll();
    return true;
  }

  private async adopt(p: PoolState, sentAt: number): Promise<void> {
    const running = [...p.slots].filter((s) => !s.lost);
    const drop = [...this.parts.fallback.takeFree(p), ...p.orphans];
    const d = { ...p.deltas };
    const lostDelta = p.lostDelta;
    const pending = p.pendingCapacity;
    const known = pending
      ? {
          capacity: pending.capacity === null ? '' : String(pending.capacity),
          source: pending.source,
        }
      : p.settings();
    let reply: [number, number, string, string, string[]];
    try {
      reply = await this.ctx
        .runner()
        .script('balancerAdopt', p.keys.script, [
          ...this.ctx.common(),
          this.ctx.processId,
          p.epoch,
          freshEpoch(),
          this.ctx.tuning.restartHoldMs,
          known.capacity,
          known.source,
          pending ? '1' : '0',
          d.admitted,
          d.rejected,
          d.timedOut,
          d.shed,
          lostDelta,
          running.length,
          ...running.map(slotArg),
          ...drop,
        ]);
    } catch (err) {
      // The free slots are not used again; Redis drops them when their leases expire.
      drop.forEach((id) => p.orphans.add(id));
      throw err;
    }
    const [workers, capacity, source, epoch, lost] = reply;
    // Applied, whatever the other pools' outcome: the script ran.
    drop.forEach((id) => p.orphans.delete(id));
    p.addDeltas(d, -1);
    p.lostDelta -= lostDelta;
    if (p.pendingCapacity === pending) p.pendingCapacity = undefined;
    p.workers = Math.max(1, workers);
    p.learn(capacity, source);
    if (p.epoch && epoch !== p.epoch)
      this.ctx.warn(`Redis lost or replaced the state of ${p.name} (restart, failover?)`);
    p.epoch = epoch;
    renewed(this.ctx, p, running, lost, sentAt);
  }
}
