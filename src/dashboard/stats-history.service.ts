import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import { BalancerStatsService } from '../admission/balancer-stats.service';
import type { ResolvedBalancerOptions } from '../config/resolve-options';

/** Columns of one pool's history (uPlot's data layout: one array per series, aligned). */
export interface PoolHistory {
  /** Unix time of each sample, in seconds (millisecond precision). */
  t: number[];
  active: number[];
  queued: number[];
  /** `null` while the capacity is unknown (probing). */
  capacity: Array<number | null>;
  admitted: number[];
  rejected: number[];
  timed_out: number[];
}

/** `GET /balancer/history`. */
export interface BalancerHistory {
  interval_s: number;
  seconds: number;
  pools: Record<string, PoolHistory>;
}

interface Sample {
  t: number;
  active: number;
  queued: number;
  capacity: number | null;
  admitted: number;
  rejected: number;
  timed_out: number;
}

/** A fixed-size ring of samples. */
class Ring {
  private readonly items: Sample[] = [];
  private start = 0;

  constructor(private readonly size: number) {}

  push(s: Sample): void {
    if (this.items.length < this.size) this.items.push(s);
    else {
      this.items[this.start] = s;
      this.start = (this.start + 1) % this.size;
    }
  }

  toArray(): Sample[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}

const INTERVAL_MS = 1000;

/**
 * Keeps the last `ui.historySeconds` of one-second samples of every pool, so a dashboard opened
 * now shows the past minutes at once. Runs only while the dashboard is enabled; a sample that is
 * still being taken (slow Redis) makes the next tick skip rather than pile up.
 */
@Injectable()
export class StatsHistory implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BalancerDashboard');
  private readonly rings = new Map<string, Ring>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  private failing = false;

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly stats: BalancerStatsService,
  ) {}

  get enabled(): boolean {
    return this.options.ui.enable;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Take one sample now (the timer calls this every second). */
  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      // The charts need the live numbers only, not the stored probe reports.
      const snap = await this.stats.snapshot({ withProbe: false });
      const t = Date.now() / 1000;
      for (const [pool, e] of Object.entries(snap.endpoints)) {
        let ring = this.rings.get(pool);
        if (!ring) this.rings.set(pool, (ring = new Ring(this.options.ui.historySeconds)));
        ring.push({
          t,
          active: e.active_requests,
          queued: e.queued,
          capacity: e.capacity,
          admitted: e.admitted,
          rejected: e.rejected,
          timed_out: e.timed_out,
        });
      }
      this.failing = false;
    } catch (err) {
      // The store may be down for a while: say so once, keep sampling.
      if (!this.failing && this.options.logger) {
        this.logger.warn(`history sample failed: ${(err as Error).message}`);
      }
      this.failing = true;
    } finally {
      this.busy = false;
    }
  }

  /** Samples newer than `since` (Unix seconds), or all of them. */
  history(since?: number): BalancerHistory {
    const pools: Record<string, PoolHistory> = {};
    for (const [pool, ring] of this.rings) {
      const h: PoolHistory = {
        t: [],
        active: [],
        queued: [],
        capacity: [],
        admitted: [],
        rejected: [],
        timed_out: [],
      };
      for (const s of ring.toArray()) {
        if (since !== undefined && s.t <= since) continue;
        h.t.push(s.t);
        h.active.push(s.active);
        h.queued.push(s.queued);
        h.capacity.push(s.capacity);
        h.admitted.push(s.admitted);
        h.rejected.push(s.rejected);
        h.timed_out.push(s.timed_out);
      }
      pools[pool] = h;
    }
    return { interval_s: INTERVAL_MS / 1000, seconds: this.options.ui.historySeconds, pools };
  }
}
