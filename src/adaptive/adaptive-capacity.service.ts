import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleDestroy,
} from '@nestjs/common';
import type {
  AdaptiveStatus,
  AdaptiveStatusSource,
  CapacityChange,
} from '../admission/adaptive-status';
import { PoolRegistry, type ResolvedPool } from '../admission/pool-registry';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import {
  CapacityStore,
  type PoolSnapshot,
  type ProbeLock,
} from '../storage/capacity-store.interface';
import {
  adaptiveBounds,
  adaptiveSettingsFor,
  type PoolAdaptiveSettings,
} from './adaptive-settings';
import { CapacityController } from './capacity-controller';
import { PoolSampler } from './pool-sampler';

const HISTORY = 50;
/** Snapshots per interval. */
const SAMPLES_PER_INTERVAL = 8;

interface PoolControl {
  pool: ResolvedPool;
  settings: PoolAdaptiveSettings;
  sampler: PoolSampler;
  controller: CapacityController | null;
  bounds: { min: number; max: number } | null;
  /** Capacity this controller set last (an outside change restarts the controller). */
  lastSet: number | null;
  intervalStart: number;
  lastReprobe: number;
  lock: ProbeLock | null;
  timer?: NodeJS.Timeout;
  busy: boolean;
  history: CapacityChange[];
}

/**
 * Runs one `CapacityController` per adaptive pool. Each pool is sampled
 * `SAMPLES_PER_INTERVAL` times per interval through the store's snapshot (global numbers with
 * Redis) and judged once per interval; a change goes through `CapacityStore.setCapacity(pool,
 * n, 'adaptive')`, which every worker follows (with Redis the cap lives in Redis).
 *
 * With Redis, one controller per pool across all workers: the one holding the pool's adaptive
 * lock (the probe lock pattern, on the key `<pool>#adaptive`, renewed every interval). The
 * others only watch; if the holder dies its lock expires and another worker takes over.
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
      if (!settings) continue;
      const control: PoolControl = {
        pool,
        settings,
        sampler: new PoolSampler(),
        controller: null,
        bounds: null,
        lastSet: null,
        intervalStart: Date.now(),
        lastReprobe: Date.now(),
        lock: null,
        busy: false,
        history: [],
      };
      this.controls.set(pool.key, control);
      const every = Math.max(20, settings.intervalMs / SAMPLES_PER_INTERVAL);
      control.timer = setInterval(() => void this.tick(control), every);
      control.timer.unref();
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const c of this.controls.values()) {
      clearInterval(c.timer);
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
    if (!c) return null;
    return {
      min: c.bounds?.min ?? c.settings.min ?? null,
      max: c.bounds?.max ?? c.settings.max ?? null,
      interval_s: c.settings.intervalMs / 1000,
      controller: c.lock !== null,
      reference_latency_ms:
        c.controller?.referenceLatencyMs === null || c.controller === null
          ? null
          : Math.round(c.controller.referenceLatencyMs * 100) / 100,
      history: [...c.history],
    };
  }

  private async tick(c: PoolControl): Promise<void> {
    if (c.busy || this.stopped) return;
    c.busy = true;
    try {
      await this.step(c);
    } catch (err) {
      if (this.options.logger) this.logger.warn(`${c.pool.key}: ${(err as Error).message}`);
    } finally {
      c.busy = false;
    }
  }

  private async step(c: PoolControl): Promise<void> {
    const key = c.pool.key;
    const now = Date.now();
    if (!c.lock) {
      if (!this.store.isReachable()) return;
      c.lock = await this.store.tryProbeLock(`${key}#adaptive`, this.lockTtl(c));
      if (!c.lock) return; // another worker controls this pool
      this.reset(c, now);
    }
    const snap = await this.store.snapshot(key);
    if (snap.capacity === null || snap.source === 'probing' || snap.source === 'fallback') {
      this.reset(c, now);
      return;
    }
    if (!c.controller || (snap.source !== 'adaptive' && snap.capacity !== c.lastSet)) {
      this.start(c, snap, now);
      return;
    }
    if (now - c.intervalStart < c.settings.intervalMs) {
      c.sampler.add(snap, now);
      return;
    }
    // One interval is complete: renew the lock, judge, maybe act.
    c.intervalStart = now;
    if (!(await c.lock.renew().catch(() => false))) {
      c.lock = null;
      this.reset(c, now);
      return;
    }
    if (c.settings.reprobeIntervalMs > 0 && now - c.lastReprobe >= c.settings.reprobeIntervalMs) {
      c.lastReprobe = now;
      c.controller.reprobe();
    }
    const o = c.sampler.take(snap, now, snap.capacity);
    const decision = o ? c.controller.observe(o) : null;
    if (!decision || decision.capacity === snap.capacity) return;
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
  private start(c: PoolControl, snap: PoolSnapshot, now: number): void {
    const base = snap.capacity!;
    c.bounds = adaptiveBounds(c.settings, base);
    c.controller = new CapacityController({
      ...c.bounds,
      latencyTolerance: c.settings.latencyTolerance,
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

  private reset(c: PoolControl, now: number): void {
    c.controller = null;
    c.sampler = new PoolSampler();
    c.intervalStart = now;
  }

  private record(c: PoolControl, capacity: number, reason: string): void {
    c.history.push({ at: new Date().toISOString(), capacity, reason });
    if (c.history.length > HISTORY) c.history.splice(0, c.history.length - HISTORY);
  }

  private lockTtl(c: PoolControl): number {
    return Math.max(5000, 3 * c.settings.intervalMs);
  }
}
