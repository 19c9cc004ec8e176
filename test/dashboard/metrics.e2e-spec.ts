import { Controller, Module, Post } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { Counter, register as globalRegistry } from 'prom-client';
import { Balanced, BalancerMetrics, BalancerModule } from '../../src';
import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { waitFor } from '../harness/wait-for';
import { appWith, basic, DashboardTestController } from './dashboard-fixtures';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small parser of the Prometheus text format: every sample line, and the `# TYPE` lines. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2];
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    if (Number.isNaN(value)) throw new Error(`bad value in: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, types };
}

function pick(samples: Sample[], name: string, labels: Record<string, string> = {}): number[] {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => s.value);
}

const one = (samples: Sample[], name: string, labels: Record<string, string> = {}): number => {
  const v = pick(samples, name, labels);
  if (v.length !== 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${v.length} samples`);
  return v[0];
};
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe.each(PLATFORMS)('metrics on %s', (platform) => {
  let running: RunningApp | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('serves Prometheus text whose numbers match /balancer/stats', async () => {
    const auth = { authorization: basic('ops', 's3cret') };
    running = await startApp(platform, appWith({ ui: { username: 'ops', password: 's3cret' } }));
    const { url } = running;

    // Capacity 2, queue of 3, 0.4 s queue timeout: a burst of 12 admits some, queues some,
    // and answers the rest 503 (and 504 if a queued one waits too long).
    const statuses = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${url}/slow`, { method: 'POST' }).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(1);
    type Pool = Record<string, number | null>;
    const statsNow = async (): Promise<Pool> => {
      const body = (await (await fetch(`${url}/balancer/stats`, { headers: auth })).json()) as {
        endpoints: Record<string, Pool>;
      };
      return body.endpoints['/slow'];
    };
    await waitFor(
      async () => (await statsNow()).active_requests === 0,
      10_000,
      'the burst to finish',
    );
    const stats = await statsNow();

    const res = await fetch(`${url}/balancer/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    // Express re-orders the parameters: text/plain; charset=utf-8; version=0.0.4
    const type = (res.headers.get('content-type') ?? '').split(';').map((p) => p.trim());
    expect(type[0]).toBe('text/plain');
    expect(type).toContain('version=0.0.4');
    const { samples, types } = parse(await res.text());
    const pool = { pool: '/slow' };

    expect(one(samples, 'balancer_capacity', pool)).toBe(stats.capacity);
    expect(one(samples, 'balancer_active_requests', pool)).toBe(stats.active_requests);
    expect(one(samples, 'balancer_available_slots', pool)).toBe(stats.available_slots);
    expect(one(samples, 'balancer_queued_requests', pool)).toBe(stats.queued);
    expect(one(samples, 'balancer_utilization_ratio', pool)).toBe(stats.utilization);
    expect(one(samples, 'balancer_admitted_total', pool)).toBe(stats.admitted);
    expect(one(samples, 'balancer_rejected_total', pool)).toBe(stats.rejected);
    expect(one(samples, 'balancer_timed_out_total', pool)).toBe(stats.timed_out);
    expect(one(samples, 'balancer_capacity_source', { pool: '/slow', source: 'manual' })).toBe(1);
    expect(one(samples, 'balancer_healthy')).toBe(1);
    expect(one(samples, 'balancer_store_reachable')).toBe(1);
    expect(pick(samples, 'balancer_probe_max_concurrency', pool)).toEqual([]); // never probed

    // Per-outcome decisions of this process add up to the store's counters (one process here).
    const decided = (outcome: string) =>
      pick(samples, 'balancer_admission_decisions_total', { ...pool, outcome });
    expect(sum(decided('admitted'))).toBe(stats.admitted);
    expect(sum(decided('queue_full'))).toBe(stats.rejected);
    expect(sum(decided('timeout'))).toBe(stats.timed_out);
    expect(sum(pick(samples, 'balancer_admission_decisions_total', pool))).toBe(12);

    // Every decision is one observation of the queue-wait histogram.
    expect(sum(pick(samples, 'balancer_queue_wait_seconds_count', pool))).toBe(12);
    const inf = one(samples, 'balancer_queue_wait_seconds_bucket', {
      ...pool,
      outcome: 'admitted',
      le: '+Inf',
    });
    expect(inf).toBe(stats.admitted);
    expect(
      one(samples, 'balancer_queue_wait_seconds_sum', { ...pool, outcome: 'admitted' }),
    ).toBeGreaterThan(0);

    expect(types.get('balancer_admitted_total')).toBe('counter');
    expect(types.get('balancer_capacity')).toBe('gauge');
    expect(types.get('balancer_queue_wait_seconds')).toBe('histogram');

    // A private registry: the application's default registry is left alone, and the app can
    // merge the balancer's registry into its own.
    expect(globalRegistry.getSingleMetric('balancer_capacity')).toBeUndefined();
    const registry = running.app.get(BalancerMetrics).registry;
    expect(await registry?.metrics()).toContain('balancer_capacity{pool="/slow"} 2');
  });

  it("goes into the app's registry: one /metrics with @willsoto/nestjs-prometheus", async () => {
    // The app's own metric, in prom-client's default registry like every willsoto user's.
    const appRequests = new Counter({ name: 'app_http_requests_total', help: 'app requests' });
    @Controller()
    class CountingController {
      @Post('work')
      @Balanced({ capacity: 3 })
      work(): { ok: true } {
        appRequests.inc();
        return { ok: true };
      }
    }
    @Module({
      imports: [
        PrometheusModule.register({ defaultMetrics: { enabled: false } }),
        BalancerModule.forRoot({
          healthEndpoint: false,
          probeOnStartup: false,
          metrics: {
            registry: globalRegistry,
            prefix: 'app_',
            defaultLabels: { service: 'scoring' },
          },
        }),
      ],
      controllers: [CountingController, DashboardTestController],
    })
    class PrometheusAppModule {}
    try {
      running = await startApp(platform, PrometheusAppModule);
      const { url } = running;
      for (let i = 0; i < 4; i++) {
        expect((await fetch(`${url}/work`, { method: 'POST' })).status).toBe(201);
      }
      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      const { samples, types } = parse(await res.text());
      // The app's metric and the balancer's, side by side, prefixed and labelled.
      expect(one(samples, 'app_http_requests_total')).toBe(4);
      const work = { service: 'scoring', pool: '/work' };
      expect(one(samples, 'app_balancer_capacity', work)).toBe(3);
      expect(one(samples, 'app_balancer_admitted_total', work)).toBe(4);
      expect(one(samples, 'app_balancer_capacity', { service: 'scoring', pool: '/slow' })).toBe(2);
      expect(
        one(samples, 'app_balancer_admission_decisions_total', { ...work, outcome: 'admitted' }),
      ).toBe(4);
      expect(one(samples, 'app_balancer_healthy', { service: 'scoring' })).toBe(1);
      expect(types.get('app_balancer_queue_wait_seconds')).toBe('histogram');
      expect(samples.filter((x) => x.name.startsWith('balancer_'))).toEqual([]);
      expect(
        samples.filter((x) => x.name.startsWith('app_balancer_') && x.labels.service !== 'scoring'),
      ).toEqual([]);
      // Served there, so not a second time under /balancer/metrics.
      expect((await fetch(`${url}/balancer/metrics`)).status).toBe(404);

      await running.close();
      // The registry outlives the app: its metrics go with it (the next app registers again).
      expect(globalRegistry.getSingleMetric('app_balancer_capacity')).toBeUndefined();
      expect(globalRegistry.getSingleMetric('app_http_requests_total')).toBeDefined();
    } finally {
      globalRegistry.removeSingleMetric('app_http_requests_total');
    }
  });

  it('is not served with metrics: false', async () => {
    running = await startApp(platform, appWith({ metrics: false }));
    expect((await fetch(`${running.url}/balancer/metrics`)).status).toBe(404);
    expect(running.app.get(BalancerMetrics).registry).toBeNull();
  });
});
