import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { Latch, waitFor } from '../harness/wait-for';
import {
  asTenant,
  STANDING_POOL,
  TENANT_POOL,
  TenantController,
  tenantApp,
  tenantStats,
} from './tenant-fixtures';

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in Prometheus text (label values unescaped). */
function samplesOf(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/balancer/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** tenant -> value of a per-tenant gauge of the tenant pool. */
function perTenant(text: string, name: string): Map<string, number> {
  return new Map(
    samplesOf(text, name)
      .filter((s) => s.labels.pool === TENANT_POOL)
      .map((s) => [s.labels.tenant, s.value]),
  );
}

describe.each(PLATFORMS)('overload policies in stats and metrics on %s', (platform) => {
  let running: RunningApp | undefined;
  let answers: Array<Promise<number>> = [];
  beforeEach(() => {
    TenantController.hold = new Latch();
    answers = [];
  });
  afterEach(async () => {
    TenantController.hold.open();
    await Promise.allSettled(answers);
    await running?.close();
    running = undefined;
  });

  /** One request of `tenant` takes the only slot; waits until it holds it. */
  async function holdSlot(url: string, tenant: string): Promise<void> {
    answers.push(asTenant(url, tenant));
    await waitFor(
      async () => (await tenantStats(url)).active_requests === 1,
      10_000,
      'the slot to be taken',
    );
  }

  /** Queue `n` requests of each tenant, in order; waits until all of them wait. */
  async function queue(url: string, plan: Array<[tenant: string, n: number]>): Promise<void> {
    const before = (await tenantStats(url)).queued;
    const total = plan.reduce((a, [, n]) => a + n, 0);
    for (const [tenant, n] of plan) for (let i = 0; i < n; i++) answers.push(asTenant(url, tenant));
    await waitFor(
      async () => (await tenantStats(url)).queued === before + total,
      10_000,
      `${total} requests to queue`,
    );
  }

  it('shows shed, the shedding state and the top tenants only once the pool uses them', async () => {
    running = await startApp(platform, tenantApp());
    const { url } = running;
    const fresh = await tenantStats(url);
    expect(fresh.shed).toBe(0);
    expect('tenants' in fresh).toBe(false);
    expect('overload' in fresh).toBe(false);
    const quiet = await scrape(url);
    expect(samplesOf(quiet, 'balancer_shedding')).toEqual([]);
    expect(samplesOf(quiet, 'balancer_tenant_queued_requests')).toEqual([]);
    expect(samplesOf(quiet, 'balancer_shed_total')).toContainEqual({
      labels: { pool: TENANT_POOL },
      value: 0,
    });

    await holdSlot(url, 'alpha');
    await queue(url, [
      ['alpha', 3],
      ['beta', 2],
      ['gamma', 1],
    ]);
    const busy = await tenantStats(url);
    expect(busy.tenants).toEqual({
      queued: [
        { tenant: 'alpha', count: 3 },
        { tenant: 'beta', count: 2 },
        { tenant: 'gamma', count: 1 },
      ],
      admitted: [{ tenant: 'alpha', count: 1 }],
    });
    // A target of a minute: nothing waited past it, nothing is shed.
    expect(busy.overload).toEqual({ shedding: false, drain_ms: null });
    expect(busy.shed).toBe(0);

    const text = await scrape(url);
    expect(perTenant(text, 'balancer_tenant_queued_requests')).toEqual(
      new Map([
        ['alpha', 3],
        ['beta', 2],
        ['gamma', 1],
      ]),
    );
    expect(perTenant(text, 'balancer_tenant_admitted_requests')).toEqual(new Map([['alpha', 1]]));
    expect(samplesOf(text, 'balancer_shedding')).toEqual([
      { labels: { pool: TENANT_POOL }, value: 0 },
    ]);

    TenantController.hold.open();
    expect(await Promise.all(answers)).toEqual(Array(7).fill(201));
    const after = await tenantStats(url);
    expect(after.tenants?.queued).toEqual([]);
    expect(after.tenants?.admitted).toEqual([
      { tenant: 'alpha', count: 4 },
      { tenant: 'beta', count: 2 },
      { tenant: 'gamma', count: 1 },
    ]);
    // Six grants from the queue: five gaps measured.
    expect(after.overload?.shedding).toBe(false);
    expect(after.overload?.drain_ms).toEqual(expect.any(Number));
    const drained = await scrape(url);
    expect(samplesOf(drained, 'balancer_queue_drain_seconds')).toEqual([
      { labels: { pool: TENANT_POOL }, value: after.overload!.drain_ms! / 1000 },
    ]);
  });

  it('exports at most 10 tenant label values per pool, and drops the ones that left', async () => {
    running = await startApp(platform, tenantApp());
    const { url } = running;
    // Keys longer than any label: the tenant key is cut to 64 characters on the way in.
    const key = (i: number) => `tenant-${String(i).padStart(2, '0')}-`.padEnd(100, 'x');
    await holdSlot(url, key(0));
    // 15 tenants waiting, tenant i with 1 + (i % 3) requests.
    await queue(
      url,
      Array.from({ length: 15 }, (_, i): [string, number] => [key(i), 1 + (i % 3)]),
    );

    const stats = await tenantStats(url);
    expect(stats.tenants?.queued).toHaveLength(10);
    const text = await scrape(url);
    const queued = perTenant(text, 'balancer_tenant_queued_requests');
    const admitted = perTenant(text, 'balancer_tenant_admitted_requests');
    const labels = new Set([...queued.keys(), ...admitted.keys()]);
    expect(labels.size).toBe(10);
    for (const t of labels) expect(t.length).toBeLessThanOrEqual(64);
    // The leaders of both rankings, with the counts of the stats.
    const top = stats.tenants!.queued[0];
    expect(queued.get(top.tenant)).toBe(top.count);
    expect(admitted.get(key(0).slice(0, 64))).toBe(1);
    for (const [tenant, count] of queued)
      expect(stats.tenants!.queued).toContainEqual({ tenant, count });

    // Everyone is served: no tenant waits any more, so none is left in the queued gauge.
    TenantController.hold.open();
    await Promise.all(answers);
    const after = await scrape(url);
    expect(perTenant(after, 'balancer_tenant_queued_requests')).toEqual(new Map());
    const served = perTenant(after, 'balancer_tenant_admitted_requests');
    expect(served.size).toBe(10);
    const final = await tenantStats(url);
    expect(new Map(final.tenants!.admitted.map((t) => [t.tenant, t.count]))).toEqual(served);
  });

  it('counts a shed request of a standing queue in stats, metrics and the decision counter', async () => {
    running = await startApp(platform, tenantApp());
    const { url } = running;
    const work = () =>
      fetch(`${url}/work`, { method: 'POST' }).then(async (res) => {
        const body = (await res.json()) as { message?: string };
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
      });
    const shedding = async (): Promise<number | undefined> =>
      samplesOf(await scrape(url), 'balancer_shedding').find((x) => x.labels.pool === STANDING_POOL)
        ?.value;

    // One slot, 50 ms per request, 40 more waiting: two seconds of queue, far past the target.
    const burst = Array.from({ length: 41 }, () => work());
    await waitFor(async () => (await shedding()) === 1, 10_000, 'the queue to count as standing');
    // A newcomer behind the standing queue would wait past the target: 503 at once.
    const late = await work();
    expect(late.status).toBe(503);
    expect(Number(late.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(late.body.message).toMatch(/queue target/);

    // Requests of the burst that arrived once shedding began were shed too: count them all.
    const all = [...(await Promise.all(burst)), late];
    const shed = all.filter((r) => r.status === 503).length;
    expect(all.filter((r) => r.status !== 503 && r.status !== 201)).toEqual([]);
    const stats = await tenantStats(url, STANDING_POOL);
    expect(stats.shed).toBe(shed);
    expect(stats.rejected).toBe(shed);
    // The queue is empty again: no longer standing; the drain interval stays measured.
    expect(stats.overload?.shedding).toBe(false);
    expect(stats.overload?.drain_ms).toBeGreaterThan(0);

    const text = await scrape(url);
    const pool = (x: Sample) => x.labels.pool === STANDING_POOL;
    expect(samplesOf(text, 'balancer_shed_total').filter(pool)).toEqual([
      { labels: { pool: STANDING_POOL }, value: shed },
    ]);
    expect(samplesOf(text, 'balancer_shedding').filter(pool)).toEqual([
      { labels: { pool: STANDING_POOL }, value: 0 },
    ]);
    const decided = (outcome: string) =>
      samplesOf(text, 'balancer_admission_decisions_total')
        .filter((x) => pool(x) && x.labels.outcome === outcome)
        .reduce((a, x) => a + x.value, 0);
    expect(decided('shed')).toBe(shed);
    expect(decided('admitted')).toBe(all.length - shed);
  });
});
