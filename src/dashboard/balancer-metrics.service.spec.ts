import { AdmissionEvents } from '../admission/admission-events';
import type {
  BalancerStats,
  BalancerStatsService,
  EndpointStats,
} from '../admission/balancer-stats.service';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { BalancerMetrics } from './balancer-metrics.service';

type Count = { tenant: string; count: number };
/** A top list of `n` tenants `<prefix>00`, `<prefix>01` … (keys padded with dots to `len`). */
const tenants = (prefix: string, n: number, len = 0): Count[] =>
  Array.from({ length: n }, (_, i) => ({
    tenant: `${prefix}${String(i).padStart(2, '0')}`.padEnd(len, '.'),
    count: 50 - i,
  }));

function endpoint(extra: Partial<EndpointStats>): EndpointStats {
  return {
    capacity: 2,
    active_requests: 2,
    available_slots: 0,
    queued: 0,
    utilization: 1,
    capacity_source: 'manual',
    admitted: 0,
    rejected: 0,
    timed_out: 0,
    shed: 0,
    queued_bytes: 0,
    max_queue_bytes: 0,
    probe: { state: 'skipped', duration_ms: null, measured_at: null, max_concurrency: null },
    ...extra,
  } as EndpointStats;
}

/** A stats document with these pools. */
function statsOf(endpoints: Record<string, EndpointStats>): BalancerStats {
  return {
    endpoints,
    healthy: true,
    shutting_down: false,
    store: { type: 'memory', reachable: true },
    worker: { pid: 1, hostname: 'test' },
    generated_at: new Date(0).toISOString(),
  };
}

/** The metrics service on a real prom-client registry, fed the stats the test sets. */
function metricsOf(current: { stats: BalancerStats }): BalancerMetrics {
  const options = {
    metrics: { enable: true, serve: true, prefix: '', defaultLabels: {} },
    routePrefix: 'balancer',
    logger: false,
  } as unknown as ResolvedBalancerOptions;
  const source = { snapshot: async () => current.stats } as unknown as BalancerStatsService;
  const metrics = new BalancerMetrics(options, source, new AdmissionEvents());
  metrics.onModuleInit();
  return metrics;
}

/** `name{labels} value` lines of one metric, as [labels, value]. */
async function series(metrics: BalancerMetrics, name: string): Promise<Array<[string, number]>> {
  const text = (await metrics.render())!.text;
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => {
      const at = l.lastIndexOf(' ');
      return [l.slice(name.length, at), Number(l.slice(at + 1))];
    });
}
const tenantOf = (labels: string): string => /tenant="((?:[^"\\]|\\.)*)"/.exec(labels)![1];
const poolOf = (labels: string): string => /pool="([^"]*)"/.exec(labels)![1];

describe('BalancerMetrics: overload policies', () => {
  const made: BalancerMetrics[] = [];
  afterEach(() => made.splice(0).forEach((m) => m.onModuleDestroy()));

  it('bounds the tenant label values: at most 10 per pool, 64 characters, stale ones dropped', async () => {
    const current = {
      stats: statsOf({
        // 15 queued and 15 admitted tenants, keys of 100 characters.
        '/a': endpoint({
          tenants: { queued: tenants('q', 15, 100), admitted: tenants('a', 15, 100) },
        }),
        // 12 tenants in both rankings.
        '/b': endpoint({ tenants: { queued: tenants('t', 12), admitted: tenants('t', 12) } }),
        '/c': endpoint({}),
      }),
    };
    const metrics = metricsOf(current);
    made.push(metrics);

    const scrape = async () => [
      ...(await series(metrics, 'balancer_tenant_queued_requests')),
      ...(await series(metrics, 'balancer_tenant_admitted_requests')),
    ];
    const perPool = (rows: Array<[string, number]>, pool: string) =>
      new Set(rows.filter(([l]) => poolOf(l) === pool).map(([l]) => tenantOf(l)));

    const first = await scrape();
    expect(perPool(first, '/a').size).toBe(10);
    expect(perPool(first, '/b').size).toBe(10);
    expect(perPool(first, '/c').size).toBe(0);
    for (const [labels] of first) expect(tenantOf(labels).length).toBeLessThanOrEqual(64);
    expect(perPool(first, '/a')).toContain(`q00${'.'.repeat(61)}`);
    expect(perPool(first, '/b')).toEqual(new Set(tenants('t', 10).map((t) => t.tenant)));
    expect(first).toContainEqual(['{pool="/b",tenant="t00"}', 50]);

    // The next scrape: pool /a's queue drained, other tenants lead pool /b.
    current.stats = statsOf({
      '/a': endpoint({ tenants: { queued: [], admitted: tenants('a', 3) } }),
      '/b': endpoint({ tenants: { queued: tenants('n', 2), admitted: [] } }),
      '/c': endpoint({}),
    });
    const next = await scrape();
    expect([...perPool(next, '/a')].sort()).toEqual(['a00', 'a01', 'a02']);
    expect([...perPool(next, '/b')].sort()).toEqual(['n00', 'n01']);
    expect(next).toHaveLength(5);
  });

  it('exports the shedding state, the drain interval and the shed counter', async () => {
    const current = {
      stats: statsOf({
        '/shedding': endpoint({
          rejected: 9,
          shed: 7,
          overload: { shedding: true, drain_ms: 250 },
        }),
        '/calm': endpoint({ overload: { shedding: false, drain_ms: null } }),
        '/plain': endpoint({}),
      }),
    };
    const metrics = metricsOf(current);
    made.push(metrics);
    expect(await series(metrics, 'balancer_shedding')).toEqual([
      ['{pool="/shedding"}', 1],
      ['{pool="/calm"}', 0],
    ]);
    expect(await series(metrics, 'balancer_queue_drain_seconds')).toEqual([
      ['{pool="/shedding"}', 0.25],
    ]);
    expect(await series(metrics, 'balancer_shed_total')).toEqual([
      ['{pool="/shedding"}', 7],
      ['{pool="/calm"}', 0],
      ['{pool="/plain"}', 0],
    ]);
  });

  it('exports the deadline rejections apart from queue timeouts, and their decision outcomes', async () => {
    const current = {
      stats: statsOf({
        '/llm': endpoint({ timed_out: 2, deadline_expired: 5, deadline_unreachable: 3 }),
        '/plain': endpoint({ deadline_expired: 0, deadline_unreachable: 0 }),
      }),
    };
    const events = new AdmissionEvents();
    const options = {
      metrics: { enable: true, serve: true, prefix: '', defaultLabels: {} },
      routePrefix: 'balancer',
      logger: false,
    } as unknown as ResolvedBalancerOptions;
    const source = { snapshot: async () => current.stats } as unknown as BalancerStatsService;
    const metrics = new BalancerMetrics(options, source, events);
    metrics.onModuleInit();
    made.push(metrics);
    events.emit('/llm', 'deadline', 1500);
    events.emit('/llm', 'deadline_unreachable', 0);
    events.emit('/llm', 'deadline_unreachable', 0);
    expect(await series(metrics, 'balancer_deadline_expired_total')).toEqual([
      ['{pool="/llm"}', 5],
      ['{pool="/plain"}', 0],
    ]);
    expect(await series(metrics, 'balancer_deadline_unreachable_total')).toEqual([
      ['{pool="/llm"}', 3],
      ['{pool="/plain"}', 0],
    ]);
    expect(await series(metrics, 'balancer_timed_out_total')).toContainEqual(['{pool="/llm"}', 2]);
    const decisions = await series(metrics, 'balancer_admission_decisions_total');
    expect(decisions).toContainEqual(['{pool="/llm",outcome="deadline"}', 1]);
    expect(decisions).toContainEqual(['{pool="/llm",outcome="deadline_unreachable"}', 2]);
  });
});

describe('BalancerMetrics: cost units', () => {
  const made: BalancerMetrics[] = [];
  afterEach(() => made.splice(0).forEach((m) => m.onModuleDestroy()));

  it('balancer_cost_units has in-flight and queued units of costed pools only', async () => {
    const current = {
      stats: statsOf({
        '/gen': endpoint({
          capacity: 100,
          units: { active: 60, queued: 250, admitted: 900, max_queue_cost: null },
        }),
        '/plain': endpoint({}),
      }),
    };
    const metrics = metricsOf(current);
    made.push(metrics);
    expect(await series(metrics, 'balancer_cost_units')).toEqual([
      ['{pool="/gen",state="in_flight"}', 60],
      ['{pool="/gen",state="queued"}', 250],
    ]);
  });
});
