import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { AdmissionEvents, type AdmissionEvent } from '../admission/admission-events';
import type { MetricsRegistry } from '../config/balancer-options';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import { BalancerStatsService, type BalancerStats } from '../admission/balancer-stats.service';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { loadPromClient, type PromClient } from './prom-client.loader';
import { MAX_TENANT_SERIES, tenantSeries, type TenantSeries } from './tenant-series';

/** Queue waits run from instant to the queue timeout (30 s by default, minutes at most). */
const WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Scrapes arriving together share one stats snapshot. */
const SNAPSHOT_REUSE_MS = 250;

type Labels = Record<string, string>;
type Row = [Labels, number];

/**
 * The balancer's Prometheus metrics: in a registry of their own by default (never prom-client's
 * global default registry unless the app passes it as `metrics.registry`), or in the app's
 * registry, so one `/metrics` serves the whole app. Gauges and counters are read from the stats
 * snapshot at scrape time, so in Redis mode they are the global numbers; the queue-wait histogram
 * and the decision counter are fed by this process's admission events.
 */
@Injectable()
export class BalancerMetrics implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('BalancerMetrics');
  /**
   * Where the metrics are registered (`metrics.registry`, or a private prom-client `Registry`);
   * `null` when metrics are off or prom-client is not installed.
   */
  readonly registry: MetricsRegistry | null = null;
  /** Names this instance registered, removed again at shutdown (a shared registry outlives us). */
  private readonly names: string[] = [];
  private decisions?: Counter<string>;
  private waits?: Histogram<string>;
  private unsubscribe?: () => void;
  private cached?: { at: number; value: Promise<BalancerStats | null> };

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly stats: BalancerStatsService,
    private readonly events: AdmissionEvents,
  ) {
    const client = options.metrics.enable ? loadPromClient() : null;
    if (client) this.registry = this.build(client, options.metrics.registry);
  }

  onModuleInit(): void {
    if (!this.options.metrics.enable) return;
    if (!this.registry) {
      if (this.options.logger) {
        this.logger.log(
          `prom-client is not installed: /${this.options.routePrefix}/metrics is not mounted`,
        );
      }
      return;
    }
    this.unsubscribe = this.events.subscribe((e) => this.record(e));
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    for (const name of this.names.splice(0)) this.registry?.removeSingleMetric(name);
  }

  /** The exposition text and its content type, or `null` when not served here. */
  async render(): Promise<{ text: string; contentType: string } | null> {
    if (!this.registry || !this.options.metrics.serve) return null;
    this.cached = undefined; // every scrape sees fresh numbers
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  private record(e: AdmissionEvent): void {
    const labels = { ...this.options.metrics.defaultLabels, pool: e.pool, outcome: e.outcome };
    this.decisions?.inc(labels);
    this.waits?.observe(labels, e.waitedMs / 1000);
  }

  private snapshot(): Promise<BalancerStats | null> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > SNAPSHOT_REUSE_MS) {
      // A store outage leaves the pool series empty for that scrape instead of failing it.
      this.cached = { at: now, value: this.stats.snapshot().catch(() => null) };
    }
    return this.cached.value;
  }

  private build(client: PromClient, shared?: MetricsRegistry): MetricsRegistry {
    const registry = (shared ?? new client.Registry()) as InstanceType<PromClient['Registry']>;
    const registers = [registry];
    const { prefix, defaultLabels } = this.options.metrics;
    const defaultNames = Object.keys(defaultLabels);
    const label = (labels: Labels): Labels => ({ ...defaultLabels, ...labels });
    // Every name goes through here: prefixed, and remembered for removal at shutdown.
    const named = (name: string): string => {
      const full = `${prefix}${name}`;
      this.names.push(full);
      return full;
    };

    const perPool = (pick: (e: BalancerStats['endpoints'][string]) => number | null) => {
      return (s: BalancerStats): Row[] =>
        Object.entries(s.endpoints).flatMap(([pool, e]): Row[] => {
          const v = pick(e);
          return v === null ? [] : [[{ pool }, v]];
        });
    };
    const gauge = (
      name: string,
      help: string,
      labelNames: string[],
      rows: (s: BalancerStats) => Row[],
    ) => {
      const g: Gauge<string> = new client.Gauge({
        name: named(name),
        help,
        labelNames: [...defaultNames, ...labelNames],
        registers,
        collect: async () => {
          const s = await this.snapshot();
          g.reset();
          if (s) for (const [labels, v] of rows(s)) g.set(label(labels), v);
        },
      });
    };
    const counter = (name: string, help: string, rows: (s: BalancerStats) => Row[]) => {
      const c: Counter<string> = new client.Counter({
        name: named(name),
        help,
        labelNames: [...defaultNames, 'pool'],
        registers,
        // The store owns the count (shared in Redis mode): mirror it at scrape time.
        collect: async () => {
          const s = await this.snapshot();
          c.reset();
          if (s) for (const [labels, v] of rows(s)) c.inc(label(labels), v);
        },
      });
    };

    gauge(
      'balancer_capacity',
      'Concurrency cap of the pool (absent while unknown).',
      ['pool'],
      perPool((e) => e.capacity),
    );
    gauge(
      'balancer_active_requests',
      'Requests holding a slot of the pool.',
      ['pool'],
      perPool((e) => e.active_requests),
    );
    gauge(
      'balancer_available_slots',
      'Free slots of the pool.',
      ['pool'],
      perPool((e) => e.available_slots),
    );
    gauge(
      'balancer_queued_requests',
      'Requests waiting for a slot of the pool.',
      ['pool'],
      perPool((e) => e.queued),
    );
    gauge(
      'balancer_cost_units',
      'Cost units of a costed pool: in flight (state=in_flight) and waiting (state=queued).',
      ['pool', 'state'],
      (s) =>
        Object.entries(s.endpoints).flatMap(([pool, e]): Row[] =>
          e.units
            ? [
                [{ pool, state: 'in_flight' }, e.units.active],
                [{ pool, state: 'queued' }, e.units.queued],
              ]
            : [],
        ),
    );
    gauge(
      'balancer_queued_body_bytes',
      'Bytes of request bodies read before admission that wait in the queue (this process).',
      ['pool'],
      perPool((e) => e.queued_bytes),
    );
    gauge(
      'balancer_max_queue_body_bytes',
      "The pool's maxQueueBytes budget (0: none).",
      ['pool'],
      perPool((e) => e.max_queue_bytes),
    );
    gauge(
      'balancer_utilization_ratio',
      'Active requests / capacity.',
      ['pool'],
      perPool((e) => e.utilization),
    );
    gauge(
      'balancer_capacity_source',
      'Where the capacity comes from (1 for the current source).',
      ['pool', 'source'],
      (s) =>
        Object.entries(s.endpoints).map(([pool, e]): Row => [
          { pool, source: e.capacity_source },
          1,
        ]),
    );
    gauge(
      'balancer_probe_max_concurrency',
      'Concurrency the last probe measured for the pool.',
      ['pool'],
      perPool((e) => e.probe.max_concurrency),
    );
    gauge(
      'balancer_probe_duration_seconds',
      'How long the last probe of the pool took.',
      ['pool'],
      perPool((e) => (e.probe.duration_ms === null ? null : e.probe.duration_ms / 1000)),
    );
    gauge(
      'balancer_probe_measured_timestamp_seconds',
      'When the last probe of the pool finished (Unix time).',
      ['pool'],
      perPool((e) => (e.probe.measured_at ? Date.parse(e.probe.measured_at) / 1000 : null)),
    );
    gauge(
      'balancer_healthy',
      '1 while the health check passes (watched routes admit).',
      [],
      (s) => [[{}, s.healthy ? 1 : 0]],
    );
    gauge('balancer_shutting_down', '1 once the application is shutting down.', [], (s) => [
      [{}, s.shutting_down ? 1 : 0],
    ]);
    gauge(
      'balancer_shedding',
      '1 while the queue counts as standing and requests past queueTargetMs are shed (pools with a queue target).',
      ['pool'],
      perPool((e) => (e.overload ? (e.overload.shedding ? 1 : 0) : null)),
    );
    gauge(
      'balancer_queue_drain_seconds',
      'Observed mean gap between grants from the queue (pools with a queue target, once measured).',
      ['pool'],
      perPool((e) => (e.overload?.drain_ms == null ? null : e.overload.drain_ms / 1000)),
    );
    const perTenant = (pick: (t: TenantSeries) => Map<string, number>) => {
      return (s: BalancerStats): Row[] =>
        Object.entries(s.endpoints).flatMap(([pool, e]) =>
          [...pick(tenantSeries(e))].map(([tenant, v]): Row => [{ pool, tenant }, v]),
        );
    };
    gauge(
      'balancer_tenant_queued_requests',
      `Requests of the tenant waiting for a slot (top tenants only: at most ${MAX_TENANT_SERIES} per pool).`,
      ['pool', 'tenant'],
      perTenant((t) => t.queued),
    );
    gauge(
      'balancer_tenant_admitted_requests',
      `Requests of the tenant admitted since the store started, approximate for rare tenants (top tenants only: at most ${MAX_TENANT_SERIES} per pool).`,
      ['pool', 'tenant'],
      perTenant((t) => t.admitted),
    );
    gauge('balancer_store_reachable', '1 while the capacity store (Redis) answers.', [], (s) => [
      [{}, s.store.reachable ? 1 : 0],
    ]);
    counter(
      'balancer_admitted_total',
      'Requests admitted to the pool.',
      perPool((e) => e.admitted),
    );
    counter(
      'balancer_rejected_total',
      'Requests answered 503 (queue full, shed, tenant queue full, deadline unreachable, unhealthy, shutting down).',
      perPool((e) => e.rejected),
    );
    counter(
      'balancer_shed_total',
      'Of the 503s: requests shed by queueTargetMs or refused by maxQueuePerTenant.',
      perPool((e) => e.shed),
    );
    counter(
      'balancer_lost_leases_total',
      'Slots whose lease could not be renewed before it expired while their request still ran (its signal was aborted).',
      perPool((e) => e.lost_leases),
    );
    counter(
      'balancer_timed_out_total',
      'Requests answered 504 (queue wait expired).',
      perPool((e) => e.timed_out),
    );
    counter(
      'balancer_deadline_expired_total',
      'Requests answered 504 deadline: their deadline passed while queued (this process; not in balancer_timed_out_total).',
      perPool((e) => e.deadline_expired),
    );
    counter(
      'balancer_deadline_unreachable_total',
      'Requests refused 503 deadline_unreachable at arrival: predicted wait past their deadline (this process; also in balancer_rejected_total).',
      perPool((e) => e.deadline_unreachable),
    );

    this.decisions = new client.Counter({
      name: named('balancer_admission_decisions_total'),
      help: 'Admission decisions of this process by outcome (admitted, queue_full, tenant_queue_full, queue_cost_full, invalid_cost, shed, timeout, deadline, deadline_unreachable, aborted, unhealthy, shutting_down).',
      labelNames: [...defaultNames, 'pool', 'outcome'],
      registers,
    });
    this.waits = new client.Histogram({
      name: named('balancer_queue_wait_seconds'),
      help: 'Time requests of this process waited for a slot, by outcome.',
      labelNames: [...defaultNames, 'pool', 'outcome'],
      buckets: WAIT_BUCKETS,
      registers,
    });
    return registry;
  }
}
