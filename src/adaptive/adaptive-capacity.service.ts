import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleDestroy,
} from '@nestjs/common';
import type { AdaptiveStatusSource } from '../admission/adaptive-status';
import { PoolRegistry } from '../admission/pool-registry';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { CapacityStore, type PoolSnapshot } from '../storage/capacity-store.interface';
import {
  adaptiveBounds,
  adaptiveSettingsFor,
  AUTO_INTERVAL_START_MS,
  autoIntervalMs,
  CONVERGE_SETTINGS,
  transitionMs,
  type PoolAdaptiveSettings,
} from './adaptive-settings';
import { CapacityController } from './capacity-controller';
import { PoolSampler } from './pool-sampler';
import type { AdaptiveStatus } from '../admission/adaptive-status';
import { type PoolControl, statusOf } from './pool-control';
import { cutShortReason } from './probe-handover';

const HISTORY = 50;
/** Snapshots per interval. */
const SAMPLES_PER_INTERVAL = 8;
/** Shortest gap between two snapshots of a pool, ms. */
const MIN_TICK_MS = 25;
/** Fewest admissions an interval waits for (a slow route's interval lasts until it has them)... */
const MIN_COMPLETIONS = 10;
/** ...for at most this many interval lengths. */
const MAX_STRETCH = 20;

/**
 * Runs one `CapacityController` per adaptive pool. Each pool is sampled
 * `SAMPLES_PER_INTERVAL` times per interval through the store's snapshot (global numbers with
 * Redis) and judged once per interval; a change goes through `CapacityStore.setCapacity(pool,
 * n, 'adaptive')`, which every worker follows (with Redis the cap lives in Redis).
 *
 * An interval lasts `interval` seconds when set, else `AUTO_INTERVAL_LATENCIES` of the pool's
 * own mean slot times (`autoIntervalMs`); either way until it has seen `MIN_COMPLETIONS`
 * admissions (up to `MAX_STRETCH` lengths), so a 3 s route is judged on enough requests and a
 * 50 ms route reacts within a few hundred milliseconds.
 *
 * A pool is adaptive when its options say so, and also, with default settings, when its probe
 * was cut short (request or time budget) or failed: its capacity is then only the best the probe
 * could prove, and live traffic carries on from there (`reason: 'probe'`).
 *
 * With Redis, one controller per pool across all workers: the one holding the pool's adaptive
 * lock (the probe lock pattern, on the key `<pool>#adaptive`, renewed every third of its TTL).
 * The others only watch; if the holder dies its lock expires and another worker takes over.
 *
 * The controller starts once the pool has a capacity (probed, reused, manual or default) and
 * restarts from scratch when someone else changes it (a new probe result).
 */
@Injectable()
export class AdaptiveCapacity
  implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown, AdaptiveStatusSource
{
  private readonly logger = new Logger('BalancerAdaptive');
  private readonly controls = new Map<string, PoolControl>();
  private stopped = false;

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly registry: PoolRegistry,
  ) {}

  onApplicationBootstrap(): void {
    for (const pool of this.registry.all()) {
      const settings = adaptiveSettingsFor(this.options, pool);
      const now = Date.now();
      const control: PoolControl = {
        pool,
        settings,
        reason: 'options',
        sampler: new PoolSampler(),
        controller: null,
        bounds: null,
        lastSet: null,
        intervalStart: now,
        intervalMs: settings?.intervalMs ?? autoIntervalMs(null),
        lastLatencyMs: null,
        lastReprobe: now,
        lock: null,
        lockTtlMs: 0,
        lastRenew: now,
        busy: false,
        history: [],
        checkedProbe: null,
      };
      this.controls.set(pool.key, control);
      this.schedule(control);
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const c of this.controls.values()) {
      clearTimeout(c.timer);
      const lock = c.lock;
      c.lock = null;
      await lock?.release().catch(() => undefined);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.onModuleDestroy();
  }

  /** The adaptive part of a pool's stats, or `null` when the pool is not adaptive. */
  status(pool: string): AdaptiveStatus | null {
    const c = this.controls.get(pool);
    return c ? statusOf(c) : null;
  }

  /** The next tick: `SAMPLES_PER_INTERVAL` per interval (the interval may change as it goes). */
  private schedule(c: PoolControl): void {
    if (this.stopped) return;
    const every = Math.max(MIN_TICK_MS, c.intervalMs / SAMPLES_PER_INTERVAL);
    c.timer = setTimeout(() => {
      void this.tick(c).finally(() => this.schedule(c));
    }, every);
    c.timer.unref();
  }

  private async tick(c: PoolControl): Promise<void> {
    if (c.busy || this.stopped) return;
    c.busy = true;
    try {
      if (!c.settings) await this.checkProbe(c);
      if (c.settings) await this.step(c, c.settings);
    } catch (err) {
      if (this.options.logger) this.logger.warn(`${c.pool.key}: ${(err as Error).message}`);
    } finally {
      c.busy = false;
    }
  }

  /**
   * A pool that is not adaptive by its options becomes so when its probe was cut short or
   * failed (checked once per probe outcome): its capacity is what the probe could prove, and
   * live traffic takes over from there.
   */
  private async checkProbe(c: PoolControl): Promise<void> {
    const finished = c.pool.probeStatus.finishedAt;
    if (!finished || finished === c.checkedProbe) return;
    c.checkedProbe = finished;
    const why = await cutShortReason(this.store, c.pool);
    if (!why) return;
    c.settings = CONVERGE_SETTINGS;
    c.reason = 'probe';
    c.intervalMs = autoIntervalMs(null);
    if (this.options.logger) {
      this.logger.log(`${c.pool.key}: ${why}; the capacity converges from live traffic`);
    }
  }

  private async step(c: PoolControl, settings: PoolAdaptiveSettings): Promise<void> {
    const key = c.pool.key;
    const now = Date.now();
    if (!c.lock) {
      if (!this.store.isReachable()) return;
      c.lockTtlMs = Math.max(5000, 3 * (settings.intervalMs ?? AUTO_INTERVAL_START_MS));
      c.lock = await this.store.tryProbeLock(`${key}#adaptive`, c.lockTtlMs);
      if (!c.lock) return; // another worker controls this pool
      c.lastRenew = now;
      this.reset(c, now);
    }
    if (now - c.lastRenew >= c.lockTtlMs / 3) {
      c.lastRenew = now;
      if (!(await c.lock.renew().catch(() => false))) {
        c.lock = null;
        this.reset(c, now);
        return;
      }
    }
    const snap = await this.store.snapshot(key);
    if (snap.capacity === null || snap.source === 'probing' || snap.source === 'fallback') {
      this.reset(c, now);
      return;
    }
    if (!c.controller || (snap.source !== 'adaptive' && snap.capacity !== c.lastSet)) {
      this.start(c, snap, now, settings);
      return;
    }
    const elapsed = now - c.intervalStart;
    const enough =
      c.sampler.admittedSince(snap) >= MIN_COMPLETIONS || elapsed >= MAX_STRETCH * c.intervalMs;
    if (elapsed < c.intervalMs || !enough) {
      c.sampler.add(snap, now);
      return;
    }
    // One interval is complete: judge, maybe act.
    c.intervalStart = now;
    if (settings.reprobeIntervalMs > 0 && now - c.lastReprobe >= settings.reprobeIntervalMs) {
      c.lastReprobe = now;
      c.controller.reprobe();
    }
    const o = c.sampler.take(snap, now, snap.capacity);
    if (o && o.latencyMs > 0) c.lastLatencyMs = o.latencyMs;
    if (settings.intervalMs === null) c.intervalMs = autoIntervalMs(this.latencyOf(c));
    const decision = o ? c.controller.observe(o) : null;
    if (!decision || decision.capacity === snap.capacity) return;
    // The interval after a change is a transition the controller skips: an automatic one only
    // lasts as long as the old requests take to drain.
    if (settings.intervalMs === null) c.intervalMs = transitionMs(this.latencyOf(c));
    await this.store.setCapacity(key, decision.capacity, 'adaptive');
    c.lastSet = decision.capacity;
    this.record(c, decision.capacity, decision.reason);
    if (this.options.logger) {
      this.logger.log(
        `${key}: capacity ${snap.capacity} -> ${decision.capacity} (${decision.reason})`,
      );
    }
  }

  /** A (new) base capacity: a fresh controller around it. */
  private start(
    c: PoolControl,
    snap: PoolSnapshot,
    now: number,
    settings: PoolAdaptiveSettings,
  ): void {
    const base = snap.capacity!;
    c.bounds = adaptiveBounds(settings, base);
    c.controller = new CapacityController({
      ...c.bounds,
      latencyTolerance: settings.latencyTolerance,
      minCompletions: MIN_COMPLETIONS,
    });
    c.lastSet = base;
    c.sampler = new PoolSampler();
    c.sampler.add(snap, now);
    c.intervalStart = now;
    this.record(
      c,
      base,
      `start from ${snap.source} capacity, bounds [${c.bounds.min}, ${c.bounds.max}]`,
    );
  }

  /**
   * The slot time an automatic interval is sized on: the lower of the controller's reference and
   * the latest reading (a reference raised by a backend that was slower for a while must not
   * stretch the intervals, and with them the time to notice a recovery).
   */
  private latencyOf(c: PoolControl): number | null {
    const values = [c.controller?.referenceLatencyMs ?? null, c.lastLatencyMs].filter(
      (v): v is number => v !== null && v > 0,
    );
    return values.length > 0 ? Math.min(...values) : null;
  }

  private reset(c: PoolControl, now: number): void {
    c.controller = null;
    c.sampler = new PoolSampler();
    c.intervalStart = now;
  }

  private record(c: PoolControl, capacity: number, reason: string): void {
    c.history.push({ at: new Date().toISOString(), capacity, reason });
    if (c.history.length > HISTORY) c.history.splice(0, c.history.length - HISTORY);
  }
}
