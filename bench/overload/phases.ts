import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  REJECT_STATUSES,
  runClosedLoop,
  runOpenLoop,
  type LoadHooks,
  type LoadResult,
  type LoadTarget,
} from '../lib/load';
import { cpuTimeMs, machineTicks, tcpCounters, type FixtureGroup } from '../lib/procs';
import { summarize, type LatencySummary } from '../lib/stats';
import { getJson, post } from './http';
import { TENANT_HEADER, type Live } from './scenarios';
import {
  capacityRate,
  type ModelStats,
  type OverloadConfig,
  type PhaseResult,
  type TenantGroupResult,
} from './types';

/** One measured phase of the overload benchmark: the load, and what it cost the machine. */

/** `tenants` load: the heavy group sends this many times the light group's rate. */
export const HEAVY_TO_LIGHT = 10;

interface CpuMark {
  at: number;
  self: NodeJS.CpuUsage;
  fixtures: Array<{ name: string; ms: number | null }>;
  machine: { busy: number; total: number } | null;
  tcp: Record<string, number> | null;
}

function cpuMark(group: FixtureGroup): CpuMark {
  return {
    at: performance.now(),
    self: process.cpuUsage(),
    fixtures: group.list().map((f) => ({ name: f.name, ms: cpuTimeMs(f.pid) })),
    machine: machineTicks(),
    tcp: tcpCounters(),
  };
}

function cpuSince(start: CpuMark, group: FixtureGroup): PhaseResult['cpu'] {
  const end = cpuMark(group);
  const wallMs = end.at - start.at;
  const pct = (ms: number): number => Math.round((ms / wallMs) * 1000) / 10;
  const self = process.cpuUsage(start.self);
  const byFixture: Record<string, number | null> = {};
  for (const f of end.fixtures) {
    const before = start.fixtures.find((x) => x.name === f.name)?.ms;
    byFixture[f.name] =
      f.ms === null || before === null || before === undefined ? null : pct(f.ms - before);
  }
  let machine: number | null = null;
  if (start.machine && end.machine && end.machine.total > start.machine.total) {
    const share =
      (end.machine.busy - start.machine.busy) / (end.machine.total - start.machine.total);
    machine = Math.round(share * cpus().length * 1000) / 10;
  }
  let tcp: Record<string, number> | null = null;
  if (start.tcp && end.tcp) {
    tcp = {};
    for (const [k, v] of Object.entries(end.tcp)) tcp[k] = v - (start.tcp[k] ?? 0);
  }
  return {
    wallMs: Math.round(wallMs),
    generator: pct((self.user + self.system) / 1000),
    byFixture,
    machine,
    tcp,
  };
}

/** Answers by status and latency samples of one phase, from the load generator's hooks. */
class Samples {
  readonly byStatus: Record<string, number> = {};
  readonly ok: number[] = [];
  readonly other: Record<string, number[]> = {};
  readonly lostByReason: Record<string, number> = {};

  readonly hooks: Required<Pick<LoadHooks, 'onResponse' | 'onLost'>> = {
    onResponse: (status, ms, _url, measured) => {
      if (measured) this.add(status, ms);
    },
    onLost: (reason, _url, measured) => {
      if (measured) this.lostByReason[reason] = (this.lostByReason[reason] ?? 0) + 1;
    },
  };

  add(status: number, ms: number): void {
    const key = String(status);
    this.byStatus[key] = (this.byStatus[key] ?? 0) + 1;
    if (status >= 200 && status < 300) this.ok.push(ms);
    else (this.other[key] ??= []).push(ms);
  }

  /** Everything of a LoadResult but goodput (which counts completions in the window). */
  summary(): Pick<
    LoadResult,
    | 'byStatus'
    | 'ok'
    | 'latency'
    | 'latencyByStatus'
    | 'rejectedLatency'
    | 'lost'
    | 'lostByReason'
    | 'sent'
  > {
    const latencyByStatus: Record<string, LatencySummary> = {};
    for (const [s, v] of Object.entries(this.other)) latencyByStatus[s] = summarize(v);
    const answered = Object.values(this.byStatus).reduce((a, b) => a + b, 0);
    const lost = Object.values(this.lostByReason).reduce((a, b) => a + b, 0);
    return {
      byStatus: this.byStatus,
      ok: this.ok.length,
      latency: summarize(this.ok),
      latencyByStatus,
      rejectedLatency: summarize(REJECT_STATUSES.flatMap((s) => this.other[String(s)] ?? [])),
      lost,
      lostByReason: this.lostByReason,
      sent: answered + lost,
    };
  }
}

function appLoops(appUrls: string[]): Promise<PhaseResult['appLoops']> {
  return Promise.all(
    appUrls.map((u) =>
      getJson<PhaseResult['appLoops'][number]>(`${u}/__bench/loop`).catch(() => null),
    ),
  );
}

function commonOptions(
  urls: string[],
  cfg: OverloadConfig,
): {
  target: LoadTarget;
  warmupMs: number;
  durationMs: number;
  requestTimeoutMs: number;
  drainTimeoutMs: number;
} {
  return {
    target: { urls, path: '/predict', method: 'POST', body: { input: 'bench' } },
    warmupMs: cfg.warmupS * 1000,
    durationMs: cfg.durationS * 1000,
    requestTimeoutMs: cfg.queueTimeoutS * 1000 + 15_000,
    drainTimeoutMs: cfg.queueTimeoutS * 1000 + 10_000,
  };
}

function openLoop(
  urls: string[],
  cfg: OverloadConfig,
  rate: number,
  extra: LoadHooks & { headers?: Record<string, string> } = {},
): Promise<LoadResult> {
  const common = commonOptions(urls, cfg);
  const { headers, ...hooks } = extra;
  return runOpenLoop({
    ...common,
    ...hooks,
    target: { ...common.target, headers },
    rate,
    arrivals: cfg.arrivals,
    maxRequests: Math.ceil(rate * (cfg.durationS + cfg.warmupS) * 1.5) + 100,
    maxInFlight: Math.max(2000, Math.ceil(rate * (cfg.queueTimeoutS + 2) * 2)),
  });
}

/**
 * The `tenants` load: the open-loop rate split between two groups sending tenant keys `heavy`
 * and `light` (HEAVY_TO_LIGHT : 1), at the same time. The phase's own fields add both up.
 */
async function tenantsLoad(
  urls: string[],
  cfg: OverloadConfig,
): Promise<LoadResult & { groups: NonNullable<PhaseResult['groups']> }> {
  const total = cfg.rate * capacityRate(cfg);
  const rates = {
    heavy: (total * HEAVY_TO_LIGHT) / (HEAVY_TO_LIGHT + 1),
    light: total / (HEAVY_TO_LIGHT + 1),
  };
  const all = new Samples();
  const run = async (tenant: 'heavy' | 'light'): Promise<TenantGroupResult> => {
    const r = await openLoop(urls, cfg, rates[tenant], {
      ...all.hooks,
      headers: { [TENANT_HEADER]: tenant },
    });
    return { ...r, tenant, rate: rates[tenant] };
  };
  const [heavy, light] = await Promise.all([run('heavy'), run('light')]);
  return {
    ...all.summary(),
    durationS: cfg.durationS,
    goodput: heavy.goodput + light.goodput,
    notSent: heavy.notSent + light.notSent,
    offered: `${Math.round(total)} req/s ${cfg.arrivals}, ${HEAVY_TO_LIGHT}:1 heavy:light`,
    groups: { heavy, light },
  };
}

/** One overload phase (closed, open or tenants) against one scenario. */
export async function runPhase(
  load: 'closed' | 'open' | 'tenants',
  live: Live,
  cfg: OverloadConfig,
): Promise<PhaseResult> {
  const { urls, appUrls } = live.prepared!;
  await post(`${live.modelUrl!}/reset`);
  await appLoops(appUrls);
  const mark = cpuMark(live.group);
  let result: LoadResult & { groups?: PhaseResult['groups'] };
  if (load === 'open') {
    result = await openLoop(urls, cfg, cfg.rate * capacityRate(cfg));
  } else if (load === 'tenants') {
    result = await tenantsLoad(urls, cfg);
  } else {
    result = await runClosedLoop({
      ...commonOptions(urls, cfg),
      clients: cfg.clients * cfg.k,
      maxRequests: 5_000_000,
    });
  }
  const cpu = cpuSince(mark, live.group);
  const loops = await appLoops(appUrls);
  const model = await getJson<ModelStats>(`${live.modelUrl!}/stats`).catch(() => null);
  return { load, ...result, model, cpu, appLoops: loops };
}

/** Clients per target in the low-load phase: a quarter of K, far below every cap. */
export function lowClientsPerTarget(cfg: OverloadConfig): number {
  return Math.max(1, Math.floor(cfg.k / 4));
}

/**
 * Low load, all scenarios at once: each request goes to the next target in turn, so the
 * machine's noise falls on every scenario alike and the small differences (added latency)
 * are not drowned by it. Each target sees about K/4 requests in flight.
 */
export async function runLowPhase(
  active: Live[],
  cfg: OverloadConfig,
): Promise<Map<Live, PhaseResult>> {
  const owner = new Map<string, Live>();
  for (const live of active) for (const u of live.prepared!.urls) owner.set(u, live);
  const urls = [...owner.keys()];
  const acc = new Map<Live, Samples>(active.map((l) => [l, new Samples()]));
  await Promise.all(active.map((l) => post(`${l.modelUrl!}/reset`)));
  const marks = new Map(active.map((l) => [l, cpuMark(l.group)]));
  const durationMs = cfg.lowDurationS * 1000;
  await runClosedLoop({
    target: { urls, path: '/predict', method: 'POST', body: { input: 'bench' } },
    clients: lowClientsPerTarget(cfg) * urls.length,
    durationMs,
    warmupMs: cfg.warmupS * 1000,
    requestTimeoutMs: cfg.queueTimeoutS * 1000 + 15_000,
    drainTimeoutMs: cfg.queueTimeoutS * 1000 + 10_000,
    maxRequests: 5_000_000,
    onResponse: (status, ms, url, measured) =>
      acc.get(owner.get(url)!)!.hooks.onResponse(status, ms, url, measured),
    onLost: (reason, url, measured) =>
      acc.get(owner.get(url)!)!.hooks.onLost(reason, url, measured),
  });
  const out = new Map<Live, PhaseResult>();
  for (const live of active) {
    const s = acc.get(live)!.summary();
    out.set(live, {
      load: 'low',
      durationS: durationMs / 1000,
      ...s,
      goodput: s.ok / (durationMs / 1000),
      notSent: 0,
      offered: `${lowClientsPerTarget(cfg)} clients per target, interleaved`,
      model: await getJson<ModelStats>(`${live.modelUrl!}/stats`).catch(() => null),
      cpu: cpuSince(marks.get(live)!, live.group),
      appLoops: [],
    });
  }
  return out;
}
