import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import type {
  AcquireOptions,
  AcquireResult,
  CapacitySource,
  CapacityStore,
  Lease,
  PoolCounters,
  PoolSnapshot,
  ProbeLock,
  StoredProbeResult,
} from './capacity-store.interface';
import { MemoryCapacityStore } from './memory-capacity.store';
import {
  createRedisConnections,
  type RedisClient,
  type RedisConnections,
} from './redis/connection';
import { SCRIPTS, type ScriptName } from './redis/scripts';
import { CommandRunner } from './redis/command-runner';
import { poolKeys } from './redis/keys';
import { RedisProbeLocks } from './redis/probe-lock';

/** Timings of the store. Derived from `leaseTtl`; tests may shorten them. */
export interface RedisStoreTuning {
  /** How often this process renews its leases and worker entry. @default leaseTtl / 3 */
  heartbeatMs: number;
  /** Mean interval of the polling fallback while this process has waiters. @default min(500, leaseTtl / 4) */
  pollMs: number;
  /** A command that takes longer counts as Redis being unreachable. @default 2000 */
  commandTimeoutMs: number;
  /** How long `init()` waits for the first connection before starting in fallback. @default 3000 */
  connectWaitMs: number;
  /** Mean interval between reconnection checks while in fallback. @default 500 */
  recoverMs: number;
}

export interface RedisStoreSettings {
  logger: boolean;
  tuning?: Partial<RedisStoreTuning>;
}

type Storage = ResolvedBalancerOptions['storage'];

interface PoolInfo {
  readonly name: string;
  /** meta, leases, queue, qexp */
  readonly keys: string[];
  /** keys + workers */
  readonly keys5: string[];
  /** Last capacity this process set or read; `undefined` = never known. */
  lastCapacity: number | null | undefined;
  lastSource: CapacitySource;
  /** A `setCapacity` that could not reach Redis: written (overwriting) on recovery. */
  pendingCapacity?: { capacity: number | null; source: CapacitySource };
  /** Live workers of this pool at the last heartbeat (>= 1). */
  workers: number;
  /** Last global counters read from Redis. */
  counters: PoolCounters;
  /** Counts decided while Redis was unreachable, added to Redis on recovery. */
  deltas: PoolCounters;
  /** Ids this process abandoned in Redis during an outage; removed on recovery. */
  orphans: Set<string>;
  slots: Set<Slot>;
  waiters: Set<RedisWaiter>;
  /** Slots of this pool recorded in Redis (they count against the local share in fallback). */
  redisHeld: number;
  /** Capacity currently given to the local fallback store. */
  localCap: number | null | undefined;
  /**
   * Placeholder leases (`<processId>:hold:<i>`, i < holds) recorded in Redis while a recovery
   * holds off: with this process's real slots they reserve its whole local share, so workers
   * already back on global admission cannot hand out what this one may still admit locally.
   */
  holds: number;
}

interface Slot extends Lease {
  mode: 'redis' | 'local';
  local?: Lease;
  /** A local slot already recorded in Redis by a recovery attempt that then held off. */
  adopted?: boolean;
  released: boolean;
}

interface RedisWaiter {
  readonly id: string;
  readonly pool: PoolInfo;
  readonly start: number;
  readonly deadline: number;
  readonly maxQueue: number;
  readonly signal?: AbortSignal;
  state: 'enqueuing' | 'waiting' | 'cancelling' | 'done';
  /** A grant message arrived before the enqueue reply. */
  grantedEarly: boolean;
  /** Abort or rejectWaiters while the enqueue was in flight. */
  cancelRequested?: 'aborted' | 'closed';
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
  resolve(result: AcquireResult): void;
}

interface LocalWaiter {
  readonly controller: AbortController;
  /** Set when Redis came back: the wait continues in the global queue. */
  migrate: boolean;
}

const ZERO = (): PoolCounters => ({ admitted: 0, rejected: 0, timedOut: 0 });

function jitter(ms: number): number {
  return ms * (0.5 + Math.random());
}

/** Wait for `promise`, at most `ms` (the timer does not outlive it). */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Capacity store shared by every worker and host through Redis.
 *
 * - Slots are leases in a sorted set (score = expiry), renewed by a per-process heartbeat: a
 *   killed worker's slots come back within `leaseTtl`.
 * - Acquire and release are one Lua call each (EVALSHA through `defineCommand`, which reloads a
 *   script after NOSCRIPT). Waiters of all workers sit in one queue ordered by arrival; a release
 *   grants the head waiter inside the same script and publishes the grant to the waiter's
 *   process; a jittered poll covers lost messages.
 * - Redis unreachable: admission falls back to a local share of the last known capacity
 *   (capacity / live workers, at least 1), `isReachable()` is false, and the store reconnects by
 *   itself; on recovery it records the slots it handed out locally, drops what it abandoned in
 *   Redis, adds the counts it kept, and moves its local waiters back to the global queue.
 */
export class RedisCapacityStore implements CapacityStore {
  private readonly logger?: Logger;
  private readonly tuning: RedisStoreTuning;
  private readonly ttlMs: number;
  private readonly prefix: string;
  private readonly processId = randomBytes(6).toString('hex');
  private readonly grantPrefix: string;
  private readonly channel: string;
  private readonly pools = new Map<string, PoolInfo>();
  private readonly waiters = new Map<string, RedisWaiter>();
  private readonly localWaiters = new Set<LocalWaiter>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** Admission while Redis is unreachable. */
  private readonly local = new MemoryCapacityStore();
  private conn?: RedisConnections;
  private probeLocks?: RedisProbeLocks;
  private mode: 'redis' | 'fallback' = 'fallback';
  private nextId = 0;
  private heldCount = 0;
  private initialized = false;
  private started = false;
  private closed = false;
  private beating = false;
  private recovering = false;
  /** When Redis answered again after an outage (start of the hold-off, see `recover`). */
  private reachableSince?: number;
  private heartbeatTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private recoverTimer?: NodeJS.Timeout;
  private detach: Array<() => void> = [];

  constructor(
    private readonly storage: Storage,
    settings: RedisStoreSettings,
  ) {
    if (settings.logger) this.logger = new Logger('BalancerRedisStore');
    this.ttlMs = Math.round(storage.leaseTtl * 1000);
    this.tuning = {
      heartbeatMs: Math.max(50, Math.floor(this.ttlMs / 3)),
      pollMs: Math.min(500, Math.max(20, Math.floor(this.ttlMs / 4))),
      commandTimeoutMs: 2000,
      connectWaitMs: 3000,
      recoverMs: 500,
      ...settings.tuning,
    };
    this.prefix = storage.keyPrefix;
    this.grantPrefix = `${this.prefix}:grant:`;
    this.channel = this.grantPrefix + this.processId;
  }

  async init(): Promise<void> {
    if (this.initialized) return;
    this.initialized = true;
    const conn = createRedisConnections(this.storage);
    this.conn = conn;
    for (const [name, def] of Object.entries(SCRIPTS)) conn.commands.defineCommand(name, def);
    this.probeLocks = new RedisProbeLocks(
      new CommandRunner(conn.commands, this.tuning.commandTimeoutMs),
      (err) => this.degrade(err),
      (text) => this.warn(text),
    );

    const onError = (err: Error): void => this.degrade(err);
    const onClose = (): void => this.degrade(new Error('connection closed'));
    const onReady = (): void => {
      if (this.started) this.scheduleRecover(0);
    };
    conn.commands.on('error', onError);
    conn.commands.on('close', onClose);
    conn.commands.on('ready', onReady);
    this.detach.push(() => {
      conn.commands.off('error', onError);
      conn.commands.off('close', onClose);
      conn.commands.off('ready', onReady);
    });
    conn.subscriber.on('error', () => undefined);
    conn.subscriber.on('message', (_channel: string, id: string) => this.onGrant(id));
    // Subscribe on every 'ready', never before: a SUBSCRIBE sent while ioredis still runs its
    // ready check breaks that check, and the reconnect after it does not resubscribe. A repeated
    // SUBSCRIBE of the same channel is a no-op for Redis.
    let markSubscribed!: () => void;
    const subscribed = new Promise<void>((r) => (markSubscribed = r));
    const subscribe = (): void => {
      conn.subscriber.subscribe(this.channel).then(markSubscribed, () => undefined);
    };
    conn.subscriber.on('ready', subscribe);
    if (conn.subscriber.status === 'ready') subscribe();
    for (const c of [conn.commands, conn.subscriber]) {
      if (c.status === 'wait') c.connect().catch(() => undefined);
    }

    const ready = await this.waitReady(conn.commands, this.tuning.connectWaitMs);
    if (ready) {
      // Grants may only be announced to a subscribed process; the poll covers a slow subscribe.
      await within(subscribed, this.tuning.connectWaitMs);
      this.mode = 'redis';
    } else {
      this.warn(
        `Redis is not reachable at startup; admitting locally with a share of each pool's capacity until it is`,
      );
      this.scheduleRecover();
    }
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.tuning.heartbeatMs);
    this.heartbeatTimer.unref();
    this.started = true;
  }

  private waitReady(client: RedisClient, ms: number): Promise<boolean> {
    if (client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      client.on('ready', onReady);
    });
  }

  // ---------------------------------------------------------------- pools

  private pool(name: string): PoolInfo {
    let p = this.pools.get(name);
    if (p) return p;
    const tag = `${this.prefix}:{${name}}`;
    p = {
      name,
      keys: [`${tag}:meta`, `${tag}:leases`, `${tag}:queue`, `${tag}:qexp`],
      keys5: [`${tag}:meta`, `${tag}:leases`, `${tag}:queue`, `${tag}:qexp`, `${tag}:workers`],
      lastCapacity: undefined,
      lastSource: 'probing',
      workers: 1,
      counters: ZERO(),
      deltas: ZERO(),
      orphans: new Set(),
      slots: new Set(),
      waiters: new Set(),
      redisHeld: 0,
      localCap: undefined,
      holds: 0,
    };
    this.pools.set(name, p);
    // Register as a live worker of the pool now, not at the next heartbeat.
    if (this.mode === 'redis') this.track(this.beat(p).catch((err) => this.degrade(err)));
    return p;
  }

  /** This worker's share of the last known capacity (`null`: unknown, nothing is admitted). */
  private localShare(p: PoolInfo): number | null {
    if (p.lastCapacity === undefined || p.lastCapacity === null) return null;
    return Math.max(1, Math.floor(p.lastCapacity / Math.max(1, p.workers)));
  }

  private holdId(i: number): string {
    return `${this.processId}:hold:${i}`;
  }

  /** This worker's share of the last known capacity while Redis is unreachable. */
  private applyLocalCap(p: PoolInfo): void {
    const share = this.localShare(p);
    const cap = share === null ? null : Math.max(0, share - p.redisHeld);
    if (cap === p.localCap) return;
    p.localCap = cap;
    void this.local.setCapacity(p.name, cap, 'fallback');
  }

  // ---------------------------------------------------------------- redis calls

  private run<T>(name: ScriptName, keys: string[], args: Array<string | number>): Promise<T> {
    const client = this.conn?.commands;
    if (!client || client.status !== 'ready') {
      return Promise.reject(
        new Error(`Redis connection is ${client?.status ?? 'not initialized'}`),
      );
    }
    const fn = (client as unknown as Record<string, (...a: unknown[]) => Promise<T>>)[name];
    return this.timed(fn.call(client, ...keys, ...args));
  }

  /** A plain command, with the same fail-fast rules as the scripts. */
  private call<T>(fn: (client: RedisClient) => Promise<T>): Promise<T> {
    const client = this.conn?.commands;
    if (!client || client.status !== 'ready') {
      return Promise.reject(
        new Error(`Redis connection is ${client?.status ?? 'not initialized'}`),
      );
    }
    return this.timed(fn(client));
  }

  private timed<T>(promise: Promise<T>): Promise<T> {
    const ms = this.tuning.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    const done = (): void => void this.inflight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  // ---------------------------------------------------------------- capacity

  async setCapacity(pool: string, capacity: number | null, source: CapacitySource): Promise<void> {
    const p = this.pool(pool);
    p.lastCapacity = capacity;
    p.lastSource = source;
    if (this.mode === 'redis') {
      try {
        p.pendingCapacity = undefined;
        await this.run('balancerSetCapacity', p.keys, [
          capacity ?? '',
          source,
          '0',
          this.ttlMs,
          this.grantPrefix,
        ]);
        return;
      } catch (err) {
        this.degrade(err);
      }
    }
    p.pendingCapacity = { capacity, source };
    this.applyLocalCap(p);
  }

  // ---------------------------------------------------------------- acquire

  acquire(pool: string, options: AcquireOptions): Promise<AcquireResult> {
    const p = this.pool(pool);
    const start = performance.now();
    if (this.closed) return Promise.resolve({ ok: false, reason: 'closed', waitedMs: 0 });
    if (options.signal?.aborted)
      return Promise.resolve({ ok: false, reason: 'aborted', waitedMs: 0 });
    const deadline = start + Math.max(0, options.timeoutMs);
    if (this.mode === 'redis')
      return this.acquireRedis(p, start, deadline, options.maxQueue, options.signal);
    return this.acquireLocal(p, start, deadline, options.maxQueue, options.signal);
  }

  private acquireRedis(
    p: PoolInfo,
    start: number,
    deadline: number,
    maxQueue: number,
    signal?: AbortSignal,
  ): Promise<AcquireResult> {
    return new Promise<AcquireResult>((resolve) => {
      const w: RedisWaiter = {
        id: `${this.processId}:${this.nextId++}`,
        pool: p,
        start,
        deadline,
        maxQueue,
        signal,
        state: 'enqueuing',
        grantedEarly: false,
        resolve,
      };
      // Registered before the script runs: its grant message may beat the script's reply.
      this.waiters.set(w.id, w);
      p.waiters.add(w);
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
    this.track(
      this.run<number>('balancerAcquire', p.keys, [
        w.id,
        w.maxQueue,
        this.ttlMs,
        this.grantPrefix,
      ]).then(
        (code) => {
          if (w.state !== 'enqueuing') return;
          if (code === 1 || (code === 0 && w.grantedEarly)) return this.granted(w);
          if (code === -1)
            return this.finish(w, { ok: false, reason: 'queue_full', waitedMs: this.since(w) });
          if (this.mode !== 'redis') {
            p.orphans.add(w.id);
            return this.toLocal(w);
          }
          w.state = 'waiting';
          if (w.cancelRequested) return void this.cancel(w, w.cancelRequested);
          w.timer = setTimeout(
            () => void this.cancel(w, 'timeout'),
            Math.max(0, w.deadline - performance.now()),
          );
          this.schedulePoll();
        },
        (err: unknown) => {
          if (w.state !== 'enqueuing') return;
          this.degrade(err);
          // The script may have run before the failure: whatever it left is removed on recovery.
          p.orphans.add(w.id);
          this.toLocal(w);
        },
      ),
    );
  }

  private since(w: RedisWaiter): number {
    return performance.now() - w.start;
  }

  private cleanup(w: RedisWaiter): void {
    w.state = 'done';
    if (w.timer) clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
    this.waiters.delete(w.id);
    w.pool.waiters.delete(w);
  }

  private finish(w: RedisWaiter, result: AcquireResult): void {
    this.cleanup(w);
    w.resolve(result);
  }

  /** The waiter holds a lease in Redis. */
  private granted(w: RedisWaiter): void {
    this.cleanup(w);
    const slot = this.slot(w.pool, w.id, 'redis');
    if (w.cancelRequested || w.signal?.aborted) {
      // The client left while the grant was on its way: an aborted waiter never keeps a slot.
      void slot.release();
      w.resolve({ ok: false, reason: w.cancelRequested ?? 'aborted', waitedMs: this.since(w) });
      return;
    }
    w.resolve({ ok: true, lease: slot, waitedMs: this.since(w) });
  }

  private onGrant(id: string): void {
    const w = this.waiters.get(id);
    if (!w) return;
    if (w.state === 'waiting') this.granted(w);
    else if (w.state === 'enqueuing') w.grantedEarly = true;
  }

  private cancel(w: RedisWaiter, reason: 'timeout' | 'aborted' | 'closed'): Promise<void> {
    if (w.state !== 'waiting') return Promise.resolve();
    w.state = 'cancelling';
    if (w.timer) clearTimeout(w.timer);
    const p = w.pool;
    const fail = (): void => this.finish(w, { ok: false, reason, waitedMs: this.since(w) });
    return this.track(
      this.run<number>('balancerCancel', p.keys, [w.id, reason, this.ttlMs, this.grantPrefix]).then(
        (code) => {
          // 1: the grant won the race with the timeout; the request is admitted.
          if (code === 1) {
            w.state = 'waiting';
            return this.granted(w);
          }
          fail();
        },
        (err: unknown) => {
          this.degrade(err);
          p.orphans.add(w.id);
          if (reason === 'timeout') p.deltas.timedOut++;
          else if (reason === 'closed') p.deltas.rejected++;
          fail();
        },
      ),
    );
  }

  /** Continue a Redis waiter in the local fallback queue (Redis became unreachable). */
  private toLocal(w: RedisWaiter): void {
    this.cleanup(w);
    void this.acquireLocal(w.pool, w.start, w.deadline, w.maxQueue, w.signal).then(w.resolve);
  }

  private async acquireLocal(
    p: PoolInfo,
    start: number,
    deadline: number,
    maxQueue: number,
    signal?: AbortSignal,
  ): Promise<AcquireResult> {
    this.applyLocalCap(p);
    const lw: LocalWaiter = { controller: new AbortController(), migrate: false };
    const onAbort = (): void => lw.controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) lw.controller.abort();
    this.localWaiters.add(lw);
    const result = await this.local.acquire(p.name, {
      timeoutMs: Math.max(0, deadline - performance.now()),
      maxQueue,
      signal: lw.controller.signal,
    });
    this.localWaiters.delete(lw);
    signal?.removeEventListener('abort', onAbort);
    const waitedMs = performance.now() - start;
    if (!result.ok) {
      if (lw.migrate && !signal?.aborted && !this.closed) {
        return this.acquireRedis(p, start, deadline, maxQueue, signal);
      }
      if (result.reason === 'timeout') p.deltas.timedOut++;
      else if (result.reason === 'queue_full' || result.reason === 'closed') p.deltas.rejected++;
      return { ok: false, reason: result.reason, waitedMs };
    }
    if (this.mode === 'redis' && !this.closed) {
      // Redis came back between the local grant and now: take the slot in Redis instead.
      void result.lease.release();
      return this.acquireRedis(p, start, deadline, maxQueue, signal);
    }
    p.deltas.admitted++;
    return {
      ok: true,
      lease: this.slot(p, `${this.processId}:${this.nextId++}`, 'local', result.lease),
      waitedMs,
    };
  }

  // ---------------------------------------------------------------- leases

  private slot(p: PoolInfo, id: string, mode: Slot['mode'], local?: Lease): Slot {
    const slot: Slot = {
      pool: p.name,
      id,
      mode,
      local,
      released: false,
      release: () => this.releaseSlot(p, slot),
    };
    p.slots.add(slot);
    this.heldCount++;
    if (mode === 'redis') {
      p.redisHeld++;
      if (this.mode !== 'redis') this.applyLocalCap(p);
    }
    return slot;
  }

  private async releaseSlot(p: PoolInfo, slot: Slot): Promise<void> {
    if (slot.released) return;
    slot.released = true;
    p.slots.delete(slot);
    this.heldCount--;
    if (slot.mode === 'local') {
      if (slot.adopted) p.orphans.add(slot.id);
      await slot.local?.release();
      return;
    }
    p.redisHeld--;
    if (this.mode !== 'redis') {
      p.orphans.add(slot.id);
      this.applyLocalCap(p);
      return;
    }
    try {
      await this.track(
        this.run('balancerRelease', p.keys, [slot.id, this.ttlMs, this.grantPrefix]),
      );
    } catch (err) {
      // Not renewed any more, so Redis drops it within leaseTtl; recovery removes it sooner.
      p.orphans.add(slot.id);
      this.degrade(err);
      this.applyLocalCap(p);
    }
  }

  localActive(): number {
    return this.heldCount;
  }

  // ---------------------------------------------------------------- waiters

  rejectWaiters(pool?: string): void {
    for (const w of [...this.waiters.values()]) {
      if (pool !== undefined && w.pool.name !== pool) continue;
      if (w.state === 'waiting') void this.cancel(w, 'closed');
      else if (w.state === 'enqueuing') w.cancelRequested = 'closed';
    }
    this.local.rejectWaiters(pool);
  }

  recordRejection(pool: string): void {
    const p = this.pool(pool);
    if (this.mode !== 'redis') {
      p.deltas.rejected++;
      return;
    }
    this.track(
      this.call((c) => c.hincrby(p.keys[0], 'rejected', 1)).catch((err) => {
        p.deltas.rejected++;
        this.degrade(err);
      }),
    );
  }

  private schedulePoll(): void {
    if (this.pollTimer || this.closed) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      void this.poll();
    }, jitter(this.tuning.pollMs));
    this.pollTimer.unref();
  }

  /** The fallback for lost grant messages, and what frees slots of dead workers for our waiters. */
  private async poll(): Promise<void> {
    let pending = false;
    try {
      for (const p of this.pools.values()) {
        const waiting = [...p.waiters].filter((w) => w.state === 'waiting');
        if (waiting.length === 0) continue;
        pending = true;
        if (this.mode !== 'redis') continue;
        const ids = waiting.map((w) => w.id);
        const states = await this.track(
          this.run<number[]>('balancerPoll', p.keys, [this.ttlMs, this.grantPrefix, ...ids]),
        );
        ids.forEach((id, i) => {
          const w = this.waiters.get(id);
          if (!w || w.state !== 'waiting') return;
          if (states[i] === 1) this.granted(w);
          else if (states[i] === -1) {
            // Dropped from the queue (this process stalled past leaseTtl): queue again.
            if (w.timer) clearTimeout(w.timer);
            w.state = 'enqueuing';
            this.enqueue(w);
          }
        });
      }
    } catch (err) {
      this.degrade(err);
    }
    if (pending && this.mode === 'redis') this.schedulePoll();
  }

  // ---------------------------------------------------------------- heartbeat

  private async heartbeat(): Promise<void> {
    if (this.mode !== 'redis' || this.beating || this.closed) return;
    this.beating = true;
    try {
      for (const p of this.pools.values()) await this.beat(p);
    } catch (err) {
      this.degrade(err);
    } finally {
      this.beating = false;
    }
  }

  private async beat(p: PoolInfo): Promise<void> {
    const leaseIds: string[] = [];
    for (const s of p.slots) if (s.mode === 'redis') leaseIds.push(s.id);
    const waiterIds: string[] = [];
    for (const w of p.waiters)
      if (w.state === 'waiting' || w.state === 'cancelling') waiterIds.push(w.id);
    const [workers, capacity, missing, source] = await this.track(
      this.run<[number, number, number, string]>('balancerHeartbeat', p.keys5, [
        this.ttlMs,
        this.grantPrefix,
        this.processId,
        leaseIds.length,
        ...leaseIds,
        ...waiterIds,
      ]),
    );
    p.workers = Math.max(1, workers);
    if (source) {
      p.lastCapacity = capacity < 0 ? null : capacity;
      p.lastSource = source as CapacitySource;
    } else if (p.lastCapacity !== undefined) {
      // Redis lost the pool's settings (restart without persistence): put back what we know.
      await this.track(
        this.run('balancerSetCapacity', p.keys, [
          p.lastCapacity ?? '',
          p.lastSource,
          '1',
          this.ttlMs,
          this.grantPrefix,
        ]),
      );
    }
    if (missing > 0) {
      this.warn(
        `${missing} lease(s) of ${p.name} had expired in Redis (event loop stalled past leaseTtl?); recorded again`,
      );
    }
  }

  // ---------------------------------------------------------------- outage and recovery

  private degrade(err: unknown): void {
    if (this.mode !== 'redis' || this.closed) return;
    this.mode = 'fallback';
    this.reachableSince = undefined;
    this.warn(
      `Redis unreachable (${message(err)}); admitting locally with a share of each pool's capacity until it returns`,
    );
    for (const p of this.pools.values()) this.applyLocalCap(p);
    for (const w of [...this.waiters.values()]) {
      if (w.state !== 'waiting') continue;
      w.pool.orphans.add(w.id);
      this.toLocal(w);
    }
    this.scheduleRecover();
  }

  private scheduleRecover(delay = jitter(this.tuning.recoverMs)): void {
    if (this.recoverTimer || this.closed || this.mode === 'redis') return;
    this.recoverTimer = setTimeout(() => {
      this.recoverTimer = undefined;
      void this.recover().then((ok) => {
        if (!ok) this.scheduleRecover();
      });
    }, delay);
    this.recoverTimer.unref();
  }

  /** Put this process's state back into Redis and switch admission back to it. */
  private async recover(): Promise<boolean> {
    if (this.mode === 'redis' || this.closed) return true;
    if (this.recovering || this.conn?.commands.status !== 'ready') return false;
    this.recovering = true;
    try {
      await this.call((c) => c.ping());
      this.reachableSince ??= Date.now();
      for (const p of this.pools.values()) {
        const pending = p.pendingCapacity;
        if (pending) {
          await this.run('balancerSetCapacity', p.keys, [
            pending.capacity ?? '',
            pending.source,
            '0',
            this.ttlMs,
            this.grantPrefix,
          ]);
          if (p.pendingCapacity === pending) p.pendingCapacity = undefined;
        } else if (p.lastCapacity !== undefined) {
          await this.run('balancerSetCapacity', p.keys, [
            p.lastCapacity ?? '',
            p.lastSource,
            '1',
            this.ttlMs,
            this.grantPrefix,
          ]);
        }
        await this.probes().flush(p.name, poolKeys(this.prefix, p.name));
      }
      // Record every slot this process holds, until a pass finds nothing new; then switch over
      // in the same tick, so no local grant slips between the last pass and the switch.
      const adopted = new Set<Slot>();
      const registered = new Map<PoolInfo, number>();
      let first = true;
      for (;;) {
        let sent = false;
        for (const p of this.pools.values()) {
          const adopt = [...p.slots].filter((s) => !adopted.has(s));
          const orphans = [...p.orphans];
          const d = { ...p.deltas };
          // Real slots plus holds cover the whole local share, whatever is admitted locally
          // before this process switches over (its local count can only be lower).
          const holds = Math.max(0, (this.localShare(p) ?? 0) - p.slots.size);
          const holdIds: string[] = [];
          for (let i = 0; i < holds; i++) holdIds.push(this.holdId(i));
          for (let i = holds; i < p.holds; i++) orphans.push(this.holdId(i));
          const dirty =
            adopt.length + orphans.length + d.admitted + d.rejected + d.timedOut > 0 ||
            holds !== p.holds;
          if (!first && !dirty) continue;
          const [workers, capacity, source] = await this.run<[number, number, string]>(
            'balancerAdopt',
            p.keys5,
            [
              this.ttlMs,
              this.grantPrefix,
              this.processId,
              d.admitted,
              d.rejected,
              d.timedOut,
              adopt.length + holdIds.length,
              ...adopt.map((s) => s.id),
              ...holdIds,
              ...orphans,
            ],
          );
          p.holds = holds;
          adopt.forEach((s) => {
            adopted.add(s);
            if (s.mode === 'local') s.adopted = true;
          });
          orphans.forEach((id) => p.orphans.delete(id));
          p.deltas.admitted -= d.admitted;
          p.deltas.rejected -= d.rejected;
          p.deltas.timedOut -= d.timedOut;
          registered.set(p, workers);
          if (source) {
            p.lastCapacity = capacity < 0 ? null : capacity;
            p.lastSource = source as CapacitySource;
          }
          sent = true;
        }
        first = false;
        if (!sent) break;
      }
      // Redis may have restarted empty: until every worker that was alive before the outage has
      // put its slots back (or leaseTtl has passed: it died), the global count is too low, so
      // keep admitting locally.
      const missing = [...registered].some(([p, workers]) => workers < p.workers);
      if (missing && Date.now() - this.reachableSince < this.ttlMs) return false;
      for (const [p, workers] of registered) p.workers = Math.max(1, workers);
      this.reachableSince = undefined;
      this.mode = 'redis';
      // Local waiters continue in the global queue (aborting them here runs synchronously,
      // before the local slots below are given back, so none of them is granted locally).
      for (const lw of [...this.localWaiters]) {
        lw.migrate = true;
        lw.controller.abort();
      }
      for (const p of this.pools.values()) {
        for (const s of p.slots) {
          if (s.mode !== 'local') continue;
          s.mode = 'redis';
          p.redisHeld++;
          void s.local?.release();
          s.local = undefined;
        }
      }
      // Every local slot is a lease now: the holds go (a failure leaves them to expire, or to
      // the next recovery).
      for (const p of this.pools.values()) {
        if (p.holds === 0) continue;
        const ids = Array.from({ length: p.holds }, (_, i) => this.holdId(i));
        p.holds = 0;
        this.track(
          this.run('balancerAdopt', p.keys5, [
            this.ttlMs,
            this.grantPrefix,
            this.processId,
            0,
            0,
            0,
            0,
            ...ids,
          ]).catch((err) => {
            ids.forEach((id) => p.orphans.add(id));
            this.degrade(err);
          }),
        );
      }
      this.log('Redis reachable again; admission is global again');
      if (this.waiters.size > 0) this.schedulePoll();
      return true;
    } catch (err) {
      if (this.mode !== 'redis') this.logger?.debug(`Redis recovery failed: ${message(err)}`);
      return false;
    } finally {
      this.recovering = false;
    }
  }

  isReachable(): boolean {
    return this.mode === 'redis';
  }

  // ---------------------------------------------------------------- stats

  async snapshot(pool: string): Promise<PoolSnapshot> {
    const p = this.pool(pool);
    if (this.mode === 'redis') {
      try {
        const r = await this.track(
          this.run<[number, number, string, number, number, number, number, number]>(
            'balancerSnapshot',
            p.keys,
            [this.ttlMs, this.grantPrefix],
          ),
        );
        const [capacity, source, active, queued, admitted, rejected, timedOut] = r as unknown as [
          number,
          string,
          number,
          number,
          number,
          number,
          number,
        ];
        p.counters = { admitted, rejected, timedOut };
        if (source) {
          p.lastCapacity = capacity < 0 ? null : capacity;
          p.lastSource = source as CapacitySource;
        }
        return {
          pool,
          capacity: capacity < 0 ? null : capacity,
          source: (source || 'probing') as CapacitySource,
          active,
          queued,
          counters: { ...p.counters },
          workers: p.workers,
        };
      } catch (err) {
        this.degrade(err);
      }
    }
    this.applyLocalCap(p);
    const local = await this.local.snapshot(pool);
    return {
      pool,
      // This worker's share; `active` can be above it for a while when the worker held more
      // than its share as Redis went away (it admits nothing new until it is below).
      capacity: this.localShare(p),
      source: 'fallback',
      active: p.slots.size,
      queued: local.queued,
      counters: {
        admitted: p.counters.admitted + p.deltas.admitted,
        rejected: p.counters.rejected + p.deltas.rejected,
        timedOut: p.counters.timedOut + p.deltas.timedOut,
      },
      workers: p.workers,
    };
  }

  // ---------------------------------------------------------------- probe results and lock

  async saveProbeResult(pool: string, result: StoredProbeResult): Promise<void> {
    await this.probes().save(pool, poolKeys(this.prefix, pool), result);
  }

  async getProbeResult(pool: string): Promise<StoredProbeResult | null> {
    return this.probes().get(pool, poolKeys(this.prefix, pool));
  }

  async tryProbeLock(pool: string, ttlMs: number): Promise<ProbeLock | null> {
    return this.probes().tryLock(poolKeys(this.prefix, pool), ttlMs);
  }

  private probes(): RedisProbeLocks {
    if (!this.probeLocks) throw new Error('RedisCapacityStore used before init()');
    return this.probeLocks;
  }

  // ---------------------------------------------------------------- shutdown

  async close(): Promise<void> {
    if (this.closed) return;
    this.rejectWaiters();
    // Cancels started by replies that were still on their way start more work: wait it all out.
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.pollTimer);
    clearTimeout(this.recoverTimer);
    for (const p of this.pools.values()) {
      const ids = [...p.slots].map((s) => s.id).concat([...p.orphans]);
      for (const s of p.slots) s.released = true;
      p.slots.clear();
      p.redisHeld = 0;
      if (this.mode === 'redis') {
        await this.run('balancerLeave', p.keys5, [
          this.ttlMs,
          this.grantPrefix,
          this.processId,
          ...ids,
        ]).catch((err: unknown) =>
          this.warn(
            `could not give back the slots of ${p.name}: ${message(err)} (they expire within leaseTtl)`,
          ),
        );
      }
    }
    this.heldCount = 0;
    await this.local.close();
    for (const off of this.detach) off();
    const conn = this.conn;
    if (!conn) return;
    await this.quit(conn.subscriber);
    if (conn.ownsCommands) await this.quit(conn.commands);
  }

  private async quit(client: RedisClient): Promise<void> {
    if (client.status === 'ready') {
      await within(
        client.quit().catch(() => undefined),
        500,
      );
    }
    // After a clean QUIT the socket is closed; disconnect() would arm a 2 s ioredis timer.
    if (client.status !== 'end') client.disconnect();
  }

  // ---------------------------------------------------------------- logging

  private warn(text: string): void {
    this.logger?.warn(text);
  }

  private log(text: string): void {
    this.logger?.log(text);
  }
}
