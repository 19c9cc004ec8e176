import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import type {
  AcquireOptions,
  AcquireResult,
  CapacitySource,
  CapacityStore,
  PoolSnapshot,
  ProbeLock,
  ProbeTokenEntry,
  PublishedProbeToken,
  StoredProbeResult,
} from './capacity-store.interface';
import { message, type CommandRunner } from './redis/command-runner';
import {
  acquireRequest,
  resolveTuning,
  type AcquireRequest,
  type RedisStoreTuning,
  type StoreContext,
  type StoreMode,
} from './redis/context';
import { LeaseAbort, LeaseLostError } from './lease-abort';
import { evictionWarning } from './redis/eviction-policy';
import { LocalFallback } from './redis/fallback';
import { freshEpoch, Heartbeat } from './redis/heartbeat';
import { grantPrefix } from './redis/keys';
import { LeaseWatch } from './redis/lease-watch';
import { RedisLink } from './redis/link';
import { PoolTable, type PoolState, type Slot } from './redis/pool-state';
import { RedisProbeLocks } from './redis/probe-lock';
import { GlobalQueue } from './redis/queue-waiter';
import { Recovery } from './redis/recovery';
import { resizeSlot } from './redis/resize';
import { readSnapshot, type SnapshotReply } from './redis/snapshot-reply';

export type { RedisStoreTuning, StoreMode } from './redis/context';

export interface RedisStoreSettings {
  logger: boolean;
  tuning?: Partial<RedisStoreTuning>;
}

type Storage = ResolvedBalancerOptions['storage'];

/**
 * Capacity store shared by every worker and host through Redis; a thin facade over its parts
 * in `./redis/`: connection and command runner, key layout, pool state (the lease table),
 * global queue, heartbeat, local fallback, recovery state machine, probe lock and results.
 *
 * - Slots are leases in a sorted set (score = expiry), renewed by a per-process heartbeat: a
 *   killed worker's slots come back within `leaseTtl`.
 * - Acquire and release are one Lua call each. Waiters of all workers sit in one queue in the
 *   order of `queue-order.ts` (tenants round-robin, aged priorities; arrival order without
 *   them), with `maxQueuePerTenant` and `queueTargetMs` decided in the same ACQUIRE script; a
 *   release grants the first waiter inside the same script and publishes the grant; the
 *   grantee claims it within `claimMs`, a jittered poll covers lost messages.
 * - Redis unreachable: the cap stays a guarantee. This worker reuses only the slots it holds in
 *   Redis, for at most `fallbackWindow` after its last heartbeat (those leases outlive that
 *   window in Redis), then answers 503 until Redis is back; recovery is one atomic ADOPT per pool.
 */
export class RedisCapacityStore implements CapacityStore {
  private readonly logger?: Logger;
  private readonly tuning: RedisStoreTuning;
  private readonly ttlMs: number;
  private readonly processId = randomBytes(6).toString('hex');
  private readonly grantPrefix: string;
  private readonly ctx: StoreContext;
  private readonly pools: PoolTable;
  private readonly queue: GlobalQueue;
  private readonly fallback: LocalFallback;
  private readonly heartbeat: Heartbeat;
  private readonly watch: LeaseWatch;
  private runner?: CommandRunner;
  private probes?: RedisProbeLocks;
  private recovery?: Recovery;
  private link?: RedisLink;
  private nextId = 0;
  private initialized = false;
  private started = false;
  private closed = false;

  constructor(
    private readonly storage: Storage,
    settings: RedisStoreSettings,
  ) {
    if (settings.logger) this.logger = new Logger('BalancerRedisStore');
    this.ttlMs = Math.round(storage.leaseTtl * 1000);
    this.tuning = resolveTuning(storage, settings.tuning);
    this.grantPrefix = grantPrefix(storage.keyPrefix);
    const common = [this.ttlMs, this.tuning.claimMs, this.grantPrefix];
    this.pools = new PoolTable(storage.keyPrefix, (p) => this.register(p));
    this.ctx = {
      ttlMs: this.ttlMs,
      tuning: this.tuning,
      processId: this.processId,
      pools: this.pools,
      runner: () => this.commands(),
      mode: () => this.recovery?.mode ?? 'expired',
      isClosed: () => this.closed,
      common: () => common,
      // Fixed width: the queue serves equal keys in member order, arrival order within a process.
      newId: () => `${this.processId}:${(this.nextId++).toString(36).padStart(10, '0')}`,
      makeSlot: (p, id, expiresBy, units) => this.slot(p, id, expiresBy, units),
      degrade: (err) => this.recovery?.degrade(err),
      lose: (p, slot, why) => this.lose(p, slot, why),
      acquireLocal: (p, req) => this.acquireLocal(p, req),
      warn: (text) => this.logger?.warn(text),
      log: (text) => this.logger?.log(text),
    };
    this.queue = new GlobalQueue(this.ctx);
    this.fallback = new LocalFallback(this.ctx, () => this.recovery?.expired());
    this.watch = new LeaseWatch(this.ctx);
    this.heartbeat = new Heartbeat(this.ctx, this.queue, this.watch);
  }

  async init(): Promise<void> {
    if (this.initialized) return;
    this.initialized = true;
    const { link, ready } = await RedisLink.open(
      this.storage,
      {
        commandTimeoutMs: this.tuning.commandTimeoutMs,
        waitMs: this.tuning.connectWaitMs,
        channel: this.grantPrefix + this.processId,
      },
      {
        down: (err) => this.recovery?.degrade(err),
        ready: () => this.started && this.recovery?.schedule(0),
        grant: (id) => this.queue.onGrant(id),
      },
    );
    this.link = link;
    this.runner = link.runner;
    this.probes = new RedisProbeLocks(
      link.runner,
      (err) => this.ctx.degrade(err),
      (text) => this.ctx.warn(text),
    );
    const recovery = new Recovery(this.ctx, {
      fallback: this.fallback,
      heartbeat: this.heartbeat,
      queue: this.queue,
      probes: this.probes,
    });
    this.recovery = recovery;
    if (ready) {
      this.heartbeat.confirmedAt = performance.now();
      recovery.online();
      const warning = await evictionWarning(link.runner);
      if (warning) this.ctx.warn(warning);
    } else {
      this.ctx.warn(
        `Redis is not reachable at startup; requests wait (then 503) until it is: no slot can be promised without it`,
      );
      recovery.startCutOff();
    }
    this.heartbeat.start();
    this.started = true;
  }

  private commands(): CommandRunner {
    if (!this.runner) throw new Error('RedisCapacityStore used before init()');
    return this.runner;
  }

  /** Where admission runs right now (see `StoreMode`); for stats and tests. */
  get mode(): StoreMode {
    return this.recovery?.mode ?? 'expired';
  }

  private get online(): boolean {
    return this.recovery?.mode === 'online';
  }

  /** A new pool registers this worker as live at once, not at the next heartbeat. */
  private register(p: PoolState): void {
    if (this.online) void this.heartbeat.beat(p).catch((err) => this.ctx.degrade(err));
  }

  // ---------------------------------------------------------------- capacity

  async setCapacity(pool: string, capacity: number | null, source: CapacitySource): Promise<void> {
    const p = this.pools.get(pool);
    p.capacity = capacity;
    p.source = source;
    if (this.online) {
      try {
        p.pendingCapacity = undefined;
        p.epoch = await this.commands().script<string>('balancerSetCapacity', p.keys.script, [
          ...this.ctx.common(),
          capacity ?? '',
          source,
          p.epoch,
          freshEpoch(),
          this.tuning.restartHoldMs,
        ]);
        return;
      } catch (err) {
        this.ctx.degrade(err);
      }
    }
    p.pendingCapacity = { capacity, source };
  }

  // ---------------------------------------------------------------- acquire and release

  acquire(pool: string, options: AcquireOptions): Promise<AcquireResult> {
    const p = this.pools.get(pool);
    const start = performance.now();
    if (this.closed) return Promise.resolve({ ok: false, reason: 'closed', waitedMs: 0 });
    if (options.signal?.aborted)
      return Promise.resolve({ ok: false, reason: 'aborted', waitedMs: 0 });
    const req = acquireRequest(options, start);
    if (this.online) return this.queue.acquire(p, req);
    return this.acquireLocal(p, req);
  }

  private async acquireLocal(p: PoolState, req: AcquireRequest): Promise<AcquireResult> {
    const result = await this.fallback.acquire(p, req);
    if (result !== 'migrate') return result;
    if (this.closed)
      return { ok: false, reason: 'closed', waitedMs: performance.now() - req.start };
    return this.queue.acquire(p, req);
  }

  private slot(p: PoolState, id: string, expiresBy: number, units: number): Slot {
    const abort = new LeaseAbort();
    const slot: Slot = {
      pool: p.name,
      id,
      expiresBy,
      released: false,
      lost: false,
      abort,
      units,
      get signal() {
        return abort.signal;
      },
      resize: (to) => resizeSlot(this.ctx, p, slot, to, this.online),
      release: () => this.release(p, slot),
    };
    p.slots.add(slot);
    this.watch.watch(expiresBy);
    return slot;
  }

  /**
   * `slot` can no longer be proven (not renewed in time, or Redis no longer had it): its request
   * is told through the lease's signal, the loss is counted, and the lease is never renewed or
   * recorded again (a slot granted to someone else meanwhile stays theirs). It stays held here
   * until the request gives it back, and that release still deletes it in Redis.
   */
  private lose(p: PoolState, slot: Slot, why: string): void {
    if (slot.lost || slot.released) return;
    slot.lost = true;
    slot.abort.abort(new LeaseLostError(p.name, 'lost'));
    this.ctx.warn(`a lease of ${p.name} was lost (${why}); its request's signal is aborted`);
    if (!this.online) {
      p.lostDelta++;
      return;
    }
    this.commands()
      .call((c) => c.hincrby(p.keys.meta, 'lost', 1))
      .catch((err: unknown) => {
        p.lostDelta++;
        this.ctx.degrade(err);
      });
  }

  private async release(p: PoolState, slot: Slot): Promise<void> {
    if (slot.released) return;
    slot.released = true;
    p.slots.delete(slot);
    if (!this.online) return this.recovery?.released(p, slot);
    try {
      await this.commands().script('balancerRelease', p.keys.script, [
        ...this.ctx.common(),
        slot.id,
      ]);
    } catch (err) {
      // Not renewed any more, so Redis drops it within leaseTtl; recovery drops it sooner.
      p.orphans.add(slot.id);
      this.ctx.degrade(err);
    }
  }

  localActive(): number {
    return this.pools.held();
  }

  rejectWaiters(pool?: string): void {
    this.queue.reject(pool);
    this.fallback.reject(pool);
  }

  recordRejection(pool: string): void {
    const p = this.pools.get(pool);
    if (!this.online) {
      p.deltas.rejected++;
      return;
    }
    this.commands()
      .call((c) => c.hincrby(p.keys.meta, 'rejected', 1))
      .catch((err) => {
        p.deltas.rejected++;
        this.ctx.degrade(err);
      });
  }

  isReachable(): boolean {
    return this.online;
  }

  // ---------------------------------------------------------------- stats

  async snapshot(pool: string): Promise<PoolSnapshot> {
    const p = this.pools.get(pool);
    if (this.online) {
      try {
        const reply = await this.commands().script<SnapshotReply>(
          'balancerSnapshot',
          p.keys.script,
          [],
        );
        const read = readSnapshot(pool, reply);
        p.counters = read.counters;
        p.lost = read.lost;
        p.learn(read.capacity, read.source);
        return withLost({ ...read.snapshot, workers: p.workers }, read.lost);
      } catch (err) {
        this.ctx.degrade(err);
      }
    }
    return withLost(this.fallback.snapshot(p), p.lost + p.lostDelta);
  }

  // ---------------------------------------------------------------- probe results and lock

  async saveProbeResult(pool: string, result: StoredProbeResult): Promise<void> {
    await this.probeLocks().save(pool, this.pools.get(pool).keys, result);
  }

  async getProbeResult(pool: string): Promise<StoredProbeResult | null> {
    return this.probeLocks().get(pool, this.pools.get(pool).keys);
  }

  async tryProbeLock(pool: string, ttlMs: number): Promise<ProbeLock | null> {
    return this.probeLocks().tryLock(this.pools.get(pool).keys, ttlMs);
  }

  private probeLocks(): RedisProbeLocks {
    if (!this.probes) throw new Error('RedisCapacityStore used before init()');
    return this.probes;
  }

  async publishProbeToken(
    pool: string,
    token: string,
    ttlMs: number,
  ): Promise<PublishedProbeToken> {
    return this.probeLocks().publishToken(this.pools.get(pool).keys, token, ttlMs);
  }

  async probeTokens(pool: string): Promise<ProbeTokenEntry[]> {
    return this.probeLocks().tokens(this.pools.get(pool).keys);
  }

  // ---------------------------------------------------------------- shutdown

  async close(): Promise<void> {
    if (this.closed) return;
    this.rejectWaiters();
    // Cancels started by replies that were still on their way start more work: wait it all out.
    await this.runner?.drain();
    this.closed = true;
    this.heartbeat.stop();
    this.watch.stop();
    this.queue.stop();
    this.recovery?.stop();
    this.fallback.expire();
    for (const p of this.pools.all()) {
      const ids = [...p.slots].map((s) => s.id).concat([...p.orphans]);
      // Work still running after the drain: its slot is given back now, so tell it to stop.
      for (const s of p.slots) {
        s.released = true;
        s.abort.abort(new LeaseLostError(p.name, 'shutdown'));
      }
      p.slots.clear();
      if (this.online) {
        await this.commands()
          .script('balancerLeave', p.keys.script, [...this.ctx.common(), this.processId, ...ids])
          .catch((err: unknown) =>
            this.ctx.warn(
              `could not give back the slots of ${p.name}: ${message(err)} (they expire within leaseTtl)`,
            ),
          );
      }
    }
    await this.link?.close();
  }
}

/** A snapshot with its lost-lease count (absent while none was lost). */
function withLost(snapshot: PoolSnapshot, lost: number): PoolSnapshot {
  return lost > 0 ? { ...snapshot, lostLeases: lost } : snapshot;
}
