import { performance } from 'node:perf_hooks';
import type { AcquireResult, RejectReason } from '../capacity-store.interface';
import { queueTargetIntervalMs } from '../queue-order';
import { jitter, type AcquireRequest, type StoreContext } from './context';
import type { PoolState } from './pool-state';
import { ACQUIRE_CODES } from './scripts';

/** ACQUIRE's refusals. */
const REFUSED: Record<number, RejectReason> = {
  [ACQUIRE_CODES.queueFull]: 'queue_full',
  [ACQUIRE_CODES.tenantQueueFull]: 'tenant_queue_full',
  [ACQUIRE_CODES.shed]: 'shed',
  [ACQUIRE_CODES.queueCostFull]: 'queue_cost_full',
};

interface RedisWaiter {
  readonly id: string;
  readonly pool: PoolState;
  readonly req: AcquireRequest;
  state: 'enqueuing' | 'waiting' | 'claiming' | 'cancelling' | 'done';
  /** A grant message arrived before the enqueue reply. */
  grantedEarly: boolean;
  /** Abort or rejectWaiters while the enqueue was in flight. */
  cancelRequested?: 'aborted' | 'closed';
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
  resolve(result: AcquireResult): void;
}

/**
 * Acquire through Redis: one ACQUIRE script (a lease at once, a refusal, or a place in the
 * global queue, in the order of `queue-order.ts`); a queued waiter is granted by whichever process frees a slot, hears of it on its grant
 * channel (or from the jittered poll that covers lost messages), and claims the grant.
 */
export class GlobalQueue {
  private readonly waiters = new Map<string, RedisWaiter>();
  private pollTimer?: NodeJS.Timeout;

  constructor(private readonly ctx: StoreContext) {}

  /** Ids of the waiters of `p` that Redis should keep alive (heartbeat). */
  liveIds(p: PoolState): string[] {
    const ids: string[] = [];
    for (const w of this.waiters.values())
      if (w.pool === p && w.state !== 'enqueuing' && w.state !== 'done') ids.push(w.id);
    return ids;
  }

  get size(): number {
    return this.waiters.size;
  }

  acquire(p: PoolState, req: AcquireRequest): Promise<AcquireResult> {
    const signal = req.signal;
    return new Promise<AcquireResult>((resolve) => {
      const w: RedisWaiter = {
        id: this.ctx.newId(),
        pool: p,
        req,
        state: 'enqueuing',
        grantedEarly: false,
        resolve,
      };
      // Registered before the script runs: its grant message may beat the script's reply.
      this.waiters.set(w.id, w);
      if (signal) {
        w.onAbort = () => {
          if (w.state === 'waiting') void this.cancel(w, 'aborted');
          else if (w.state === 'enqueuing') w.cancelRequested = 'aborted';
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.enqueue(w);
    });
  }

  private enqueue(w: RedisWaiter): void {
    const p = w.pool;
    const r = w.req;
    const target = r.queueTargetMs;
    const sentAt = performance.now();
    this.ctx
      .runner()
      .script<[number, number]>('balancerAcquire', p.keys.script, [
        ...this.ctx.common(),
        w.id,
        r.maxQueue,
        r.tenant,
        r.priority,
        r.priorityAging,
        r.maxQueuePerTenant,
        target ?? '',
        target === undefined ? '' : queueTargetIntervalMs(target),
        r.cost ?? '',
        r.maxQueueCost,
      ])
      .then(
        (reply) => {
          if (w.state !== 'enqueuing') return;
          if (!Array.isArray(reply)) {
            // Not ACQUIRE's answer (a desynchronised connection): a failure, never a hang.
            this.ctx.degrade(new Error(`unexpected ACQUIRE reply ${String(reply)}`));
            p.orphans.add(w.id);
            return this.toLocal(w);
          }
          const [code, retryAfterS] = reply;
          if (code === ACQUIRE_CODES.granted) return this.granted(w, sentAt + this.ctx.ttlMs);
          if (code === ACQUIRE_CODES.queued && w.grantedEarly) return this.claim(w);
          const reason = REFUSED[code];
          if (reason) {
            const waitedMs = this.since(w);
            return this.finish(
              w,
              reason === 'shed'
                ? { ok: false, reason, waitedMs, retryAfterS }
                : { ok: false, reason, waitedMs },
            );
          }
          if (this.ctx.mode() !== 'online') {
            p.orphans.add(w.id);
            return this.toLocal(w);
          }
          w.state = 'waiting';
          if (w.cancelRequested) return void this.cancel(w, w.cancelRequested);
          w.timer = setTimeout(
            () => void this.cancel(w, 'timeout'),
            Math.max(0, w.req.deadline - performance.now()),
          );
          this.schedulePoll();
        },
        (err: unknown) => {
          if (w.state !== 'enqueuing') return;
          this.ctx.degrade(err);
          // The script may have run before the failure: whatever it left is dropped on recovery.
          p.orphans.add(w.id);
          this.toLocal(w);
        },
      );
  }

  private since(w: RedisWaiter): number {
    return performance.now() - w.req.start;
  }

  private cleanup(w: RedisWaiter): void {
    w.state = 'done';
    if (w.timer) clearTimeout(w.timer);
    if (w.onAbort) w.req.signal?.removeEventListener('abort', w.onAbort);
    this.waiters.delete(w.id);
  }

  private finish(w: RedisWaiter, result: AcquireResult): void {
    this.cleanup(w);
    w.resolve(result);
  }

  /** The waiter holds a lease in Redis that lives at least until `expiresBy`. */
  private granted(w: RedisWaiter, expiresBy: number): void {
    this.cleanup(w);
    const slot = this.ctx.makeSlot(w.pool, w.id, expiresBy, w.req.cost ?? 1);
    if (w.cancelRequested || w.req.signal?.aborted) {
      // The client left while the grant was on its way: an aborted waiter never keeps a slot.
      void slot.release();
      w.resolve({ ok: false, reason: w.cancelRequested ?? 'aborted', waitedMs: this.since(w) });
      return;
    }
    w.resolve({ ok: true, lease: slot, waitedMs: this.since(w) });
  }

  /**
   * Granted by another process's script: the grant lives claimMs, so claim it before the
   * request runs. A grant that is gone (this process stalled past the claim window) may be in
   * someone else's hands now: queue again instead.
   */
  private claim(w: RedisWaiter): void {
    const p = w.pool;
    w.state = 'claiming';
    if (w.timer) clearTimeout(w.timer);
    const sentAt = performance.now();
    this.ctx
      .runner()
      .script<number>('balancerClaim', p.keys.script, [...this.ctx.common(), w.id])
      .then(
        (claimed) => {
          if (claimed === 1) return this.granted(w, sentAt + this.ctx.ttlMs);
          this.ctx.warn(`a grant of ${p.name} was gone before it was claimed; queued again`);
          w.state = 'enqueuing';
          this.enqueue(w);
        },
        (err: unknown) => {
          this.ctx.degrade(err);
          p.orphans.add(w.id);
          this.toLocal(w);
        },
      );
  }

  onGrant(id: string): void {
    const w = this.waiters.get(id);
    if (!w) return;
    if (w.state === 'waiting') this.claim(w);
    else if (w.state === 'enqueuing') w.grantedEarly = true;
  }

  private cancel(w: RedisWaiter, reason: 'timeout' | 'aborted' | 'closed'): Promise<void> {
    if (w.state !== 'waiting') return Promise.resolve();
    w.state = 'cancelling';
    if (w.timer) clearTimeout(w.timer);
    const p = w.pool;
    const fail = (): void => this.finish(w, { ok: false, reason, waitedMs: this.since(w) });
    const sentAt = performance.now();
    return this.ctx
      .runner()
      .script<number>('balancerCancel', p.keys.script, [
        ...this.ctx.common(),
        w.id,
        reason,
        w.req.tenant,
      ])
      .then(
        (code) => {
          // 1: the grant won the race with the timeout; the request is admitted (and claimed).
          if (code === 1) return this.granted(w, sentAt + this.ctx.ttlMs);
          fail();
        },
        (err: unknown) => {
          this.ctx.degrade(err);
          p.orphans.add(w.id);
          if (reason === 'timeout') p.deltas.timedOut++;
          else if (reason === 'closed') p.deltas.rejected++;
          fail();
        },
      );
  }

  /** Continue a waiter in local admission (Redis became unreachable). */
  private toLocal(w: RedisWaiter): void {
    this.cleanup(w);
    void this.ctx.acquireLocal(w.pool, w.req).then((r) => w.resolve(r));
  }

  /** Redis is unreachable: every queued waiter continues locally; its queue entry is dropped later. */
  allToLocal(): void {
    for (const w of [...this.waiters.values()]) {
      if (w.state !== 'waiting') continue;
      w.pool.orphans.add(w.id);
      this.toLocal(w);
    }
  }

  /** Answer the waiters of `pool` (or all) with `closed`. */
  reject(pool?: string): void {
    for (const w of [...this.waiters.values()]) {
      if (pool !== undefined && w.pool.name !== pool) continue;
      if (w.state === 'waiting') void this.cancel(w, 'closed');
      else if (w.state === 'enqueuing') w.cancelRequested = 'closed';
    }
  }

  schedulePoll(): void {
    if (this.pollTimer || this.ctx.isClosed()) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      void this.poll();
    }, jitter(this.ctx.tuning.pollMs));
    this.pollTimer.unref();
  }

  stop(): void {
    clearTimeout(this.pollTimer);
  }

  /** The fallback for lost grant messages, and what frees slots of dead workers for our waiters. */
  private async poll(): Promise<void> {
    const byPool = new Map<PoolState, RedisWaiter[]>();
    for (const w of this.waiters.values()) {
      if (w.state !== 'waiting') continue;
      const list = byPool.get(w.pool) ?? [];
      list.push(w);
      byPool.set(w.pool, list);
    }
    if (byPool.size === 0 || this.ctx.mode() !== 'online') return;
    const sentAt = performance.now();
    try {
      await Promise.all(
        [...byPool].map(async ([p, waiting]) => {
          const ids = waiting.map((w) => w.id);
          const states = await this.ctx
            .runner()
            .script<number[]>('balancerPoll', p.keys.script, [...this.ctx.common(), ...ids]);
          ids.forEach((id, i) => {
            const w = this.waiters.get(id);
            if (!w || w.state !== 'waiting') return;
            if (states[i] === 1) this.granted(w, sentAt + this.ctx.ttlMs);
            else if (states[i] === -1) {
              // Dropped from the queue (this process stalled past leaseTtl): queue again.
              if (w.timer) clearTimeout(w.timer);
              w.state = 'enqueuing';
              this.enqueue(w);
            }
          });
        }),
      );
    } catch (err) {
      this.ctx.degrade(err);
    }
    if (this.ctx.mode() === 'online') this.schedulePoll();
  }
}
