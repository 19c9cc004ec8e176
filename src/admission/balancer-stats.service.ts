import { Inject, Injectable } from '@nestjs/common';
import { ADAPTIVE_STATUS, type AdaptiveStatus, type AdaptiveStatusSource } from './adaptive-status';
import { hostname } from 'node:os';
import { AdmissionGate } from './admission-gate';
import { QueuedBodyBytes } from './body-budget';
import { Deadlines } from './deadlines';
import {
  CapacityStore,
  type PoolSnapshot,
  type StoredProbeResult,
  type TenantCount,
} from '../storage/capacity-store.interface';
import { PoolRegistry, type ResolvedPool } from './pool-registry';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';

/** One pool in `/balancer/stats` (snake_case, as the seed's JSON). */
export interface EndpointStats {
  capacity: number | null;
  active_requests: number;
  available_slots: number;
  queued: number;
  healthy: boolean;
  capacity_source: string;
  utilization: number;
  admitted: number;
  rejected: number;
  timed_out: number;
  /** Of `rejected`: 503s of the overload policies (`queueTargetMs` shed, `maxQueuePerTenant`). */
  shed: number;
  /**
   * 504 `deadline` in this process: requests whose deadline passed while queued (or before they
   * arrived). Not in `timed_out` (queue timeouts) nor among client disconnects.
   */
  deadline_expired: number;
  /** 503 `deadline_unreachable` in this process (also counted in `rejected`). */
  deadline_unreachable: number;
  /** Leases lost while their request still ran (Redis: by every worker); 0 for the memory store. */
  lost_leases: number;
  /**
   * `queueTargetMs` state: whether the queue counts as standing (requests that would wait past the
   * target are shed) and the observed mean gap between grants from the queue (null until
   * measured). Absent until a request of the pool passed a queue target.
   */
  overload?: { shedding: boolean; drain_ms: number | null };
  /**
   * Top tenants (at most 10 each, largest first) by requests queued now and by requests admitted
   * (approximate for tenants that left the tracked set). Absent until a request named a tenant.
   * Tenant keys are request text: untrusted.
   */
  tenants?: { queued: TenantCount[]; admitted: TenantCount[] };
  /**
   * Cost units (a pool with `cost`, `costHeader` or `maxQueueCost`, or that a `run()` gave a
   * cost): `capacity`, `available_slots` and `utilization` then count units, and this gives the
   * units in flight, waiting and admitted so far, and the pool's `maxQueueCost` (null: none).
   * Absent while every request counts 1.
   */
  units?: { active: number; queued: number; admitted: number; max_queue_cost: number | null };
  routes: string[];
  queue_timeout: number;
  max_queue: number;
  /** Bytes of already-read request bodies waiting in the queue, in this process. */
  queued_bytes: number;
  /** The pool's `maxQueueBytes` (0: no budget). */
  max_queue_bytes: number;
  /** Processes sharing this pool (Redis: live workers at this process's last heartbeat). */
  workers: number;
  /** Adaptive capacity (bounds, controller, capacity history); `null` when off for the pool. */
  adaptive: AdaptiveStatus | null;
  probe: {
    state: string;
    error: string | null;
    measured_at: string | null;
    duration_ms: number | null;
    max_concurrency: number | null;
    /** The chosen level's throughput / the probe's peak throughput (see `probe.throughputShare`). */
    throughput_share: number | null;
    /**
     * Why the last probe stopped (`limit`, `knee`, `max_concurrency`, `budget`, `deadline`: its
     * time budget ran out and the capacity is the largest level proven within the limits).
     */
    stop_reason: string | null;
    report: unknown;
    /**
     * While the capacity is being probed: the cap real requests are admitted at (`capacity`
     * shows the level's share of it) and where it came from (`stored`: the last probe result,
     * `minimum`: 1), in every worker (Redis: told from the store); `null` otherwise.
     */
    interim_capacity: number | null;
    interim_from: 'stored' | 'minimum' | null;
    /** While probing: the concurrency level being measured (in the probing worker), else `null`. */
    level: number | null;
  };
}

export interface BalancerStats {
  endpoints: Record<string, EndpointStats>;
  healthy: boolean;
  shutting_down: boolean;
  store: { type: 'memory' | 'redis'; reachable: boolean };
  worker: { pid: number; hostname: string };
  generated_at: string;
}

/** Builds the `/balancer/stats` document; also read by the dashboard and metrics. */
@Injectable()
export class BalancerStatsService {
  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly registry: PoolRegistry,
    private readonly gate: AdmissionGate,
    private readonly bodies: QueuedBodyBytes,
    @Inject(ADAPTIVE_STATUS) private readonly adaptive: AdaptiveStatusSource,
    private readonly deadlines: Deadlines,
  ) {}

  /**
   * `withProbe: false` skips reading the stored probe results (one read of the whole level table
   * per pool; a Redis round trip each): for samplers that only want the live numbers.
   */
  async snapshot(options: { withProbe?: boolean } = {}): Promise<BalancerStats> {
    const withProbe = options.withProbe ?? true;
    const pools = this.registry.all();
    const entries = await Promise.all(pools.map((p) => this.pool(p, withProbe)));
    const endpoints: Record<string, EndpointStats> = {};
    pools.forEach((p, i) => (endpoints[p.key] = entries[i]));
    return {
      endpoints,
      healthy: this.gate.isHealthy,
      shutting_down: this.gate.isShuttingDown,
      store: { type: this.options.storage.type, reachable: this.store.isReachable() },
      worker: { pid: process.pid, hostname: hostname() },
      generated_at: new Date().toISOString(),
    };
  }

  private async pool(pool: ResolvedPool, withProbe: boolean): Promise<EndpointStats> {
    const [s, probe] = await Promise.all([
      this.store.snapshot(pool.key),
      withProbe
        ? this.store.getProbeResult(pool.key).catch((): StoredProbeResult | null => null)
        : null,
    ]);
    const held = s.units?.active ?? s.active;
    const available = s.capacity === null ? 0 : Math.max(0, s.capacity - held);
    const deadline = this.deadlines.counts(pool.key);
    return {
      capacity: s.capacity,
      active_requests: s.active,
      available_slots: available,
      queued: s.queued,
      healthy: this.gate.isHealthy,
      capacity_source: s.source,
      utilization: s.capacity ? held / s.capacity : 0,
      admitted: s.counters.admitted,
      rejected: s.counters.rejected,
      timed_out: s.counters.timedOut,
      shed: s.counters.shed,
      deadline_expired: deadline.expired,
      deadline_unreachable: deadline.unreachable,
      lost_leases: s.lostLeases ?? 0,
      ...overloadOf(s),
      ...unitsOf(pool, s),
      routes: pool.routes.map((r) => `${r.method} ${r.path}`),
      queue_timeout: pool.queueTimeoutMs / 1000,
      max_queue: pool.maxQueue,
      queued_bytes: this.bodies.queued(pool.key),
      max_queue_bytes: pool.maxQueueBytes ?? 0,
      workers: s.workers,
      adaptive: this.adaptive.status(pool.key),
      probe: {
        state: pool.probeStatus.state,
        error: pool.probeStatus.error ?? null,
        measured_at: probe?.measuredAt ?? null,
        duration_ms: probe?.durationMs ?? null,
        max_concurrency: probe?.maxConcurrency ?? null,
        throughput_share: shareOf(probe?.report),
        stop_reason: stopReasonOf(probe?.report),
        report: probe?.report ?? null,
        ...interimOf(pool, s, probe, withProbe),
      },
    };
  }
}

/**
 * The interim-cap fields of a pool while it is probed (`null` once it has its capacity). The
 * worker that set the interim cap knows it; the others (Redis) tell it from the store: a pool at
 * `probing` with a number admits at the stored result when there is one, else at 1.
 */
function interimOf(
  pool: ResolvedPool,
  s: PoolSnapshot,
  stored: StoredProbeResult | null,
  withProbe: boolean,
): Pick<EndpointStats['probe'], 'interim_capacity' | 'interim_from' | 'level'> {
  const status = pool.probeStatus;
  const probing = ['pending', 'running', 'waiting'].includes(status.state);
  if (!probing) return { interim_capacity: null, interim_from: null, level: null };
  const known =
    status.interim ??
    (withProbe && s.source === 'probing' && s.capacity !== null
      ? stored
        ? { capacity: stored.maxConcurrency, from: 'stored' as const }
        : { capacity: 1, from: 'minimum' as const }
      : undefined);
  return {
    interim_capacity: known?.capacity ?? null,
    interim_from: known?.from ?? null,
    level: status.level ?? null,
  };
}

/** The optional overload fields, only when the store reports them (absent keys stay absent). */
function overloadOf(s: PoolSnapshot): Pick<EndpointStats, 'overload' | 'tenants'> {
  const out: Pick<EndpointStats, 'overload' | 'tenants'> = {};
  if (s.overload) out.overload = { shedding: s.overload.shedding, drain_ms: s.overload.drainMs };
  if (s.tenants) out.tenants = { queued: s.tenants.queued, admitted: s.tenants.admitted };
  return out;
}

/** The units of a costed pool (absent keys stay absent for pools that count requests). */
function unitsOf(pool: ResolvedPool, s: PoolSnapshot): Pick<EndpointStats, 'units'> {
  if (!s.units && !pool.cost) return {};
  const u = s.units ?? { active: s.active, queued: s.queued, admitted: s.counters.admitted };
  return { units: { ...u, max_queue_cost: pool.cost?.maxQueueCost ?? null } };
}

/** `report.stopReason` of a stored probe report (free-form JSON), or null. */
function stopReasonOf(report: unknown): string | null {
  const reason = (report as { stopReason?: unknown } | null)?.stopReason;
  return typeof reason === 'string' ? reason : null;
}

/** `report.choice.throughputShare` of a stored probe report (free-form JSON), or null. */
function shareOf(report: unknown): number | null {
  const choice = (report as { choice?: { throughputShare?: unknown } } | null)?.choice;
  const share = choice?.throughputShare;
  return typeof share === 'number' && Number.isFinite(share) ? share : null;
}
