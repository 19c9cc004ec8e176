import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { delimiter, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { request } from 'undici';
import { PROBE_PROVIDERS } from '../src/probe/probe.parts';
import { runClosedLoop, runOpenLoop, type LoadResult, type LoadTarget } from './lib/load';
import { cpuTimeMs, FixtureGroup, freePort, machineTicks, tcpCounters } from './lib/procs';
import { summarize } from './lib/stats';
import { fmtMs, markdownTable } from './lib/table';

/**
 * `npm run bench:overload`: what happens when offered load is several times what the endpoint
 * can take. Each scenario has its own simulated model process (K slots, service time S,
 * thrashing above K, 500s at 3 x K) that the Nest app(s) call over loopback HTTP, so one worker
 * or two, every scenario drives one model with K slots and pays the same hop:
 *
 *   plain    the Nest app, unprotected
 *   memory   the same app with BalancerModule.forRoot (memory store, capacity from the probe)
 *   manual   the same with capacity K set by hand (the mechanism without the probe's estimate)
 *   redis    Redis store, 2 worker processes on two ports (round-robin per request)
 *   haproxy  the unprotected app behind HAProxy `maxconn K` with `timeout queue` = ours
 *
 * Loads: `closed` (clients x K closed-loop clients) and `open` (rate x K/S Poisson arrivals per
 * second) per scenario, interleaved; `low` (K/4 clients per scenario, every request to the next
 * scenario in turn: added latency). Results: bench/results/overload-latest.{md,json}.
 * docs/performance.md explains how to read them.
 */

export type ScenarioName = 'plain' | 'memory' | 'manual' | 'redis' | 'haproxy';
export type LoadName = 'low' | 'closed' | 'open';

export interface OverloadConfig {
  /** K: model slots. */
  k: number;
  /** S: model service time at or below K, ms. */
  s: number;
  /** Measured seconds of each overload phase (closed, open). */
  durationS: number;
  /** Measured seconds of the low-load phase. */
  lowDurationS: number;
  /** Unmeasured seconds of the same load before each measured window. */
  warmupS: number;
  /** Closed loop: clients = clients x K. */
  clients: number;
  /** Open loop: arrivals per second = rate x K/S. */
  rate: number;
  arrivals: 'poisson' | 'fixed';
  /** Our queue timeout and HAProxy's `timeout queue`, seconds. */
  queueTimeoutS: number;
  scenarios: ScenarioName[];
  loads: LoadName[];
  /** Each load is run this many times per scenario, interleaved; the median round is shown. */
  rounds: number;
  /**
   * Where the memory and Redis scenarios get their cap: `probe` (the startup probe, as users
   * run it) or `manual` (K by hand: compares the mechanisms alone; on a busy machine the probe
   * measures the box, not the model).
   */
  capacity: 'probe' | 'manual';
  /** Where overload-latest.{md,json} go; `null`: do not write. */
  outDir: string | null;
  /** Print the fixtures' output. */
  verbose: boolean;
}

export const DEFAULT_CONFIG: OverloadConfig = {
  k: 8,
  s: 50,
  durationS: 8,
  lowDurationS: 8,
  warmupS: 1,
  clients: 8,
  rate: 3,
  arrivals: 'poisson',
  queueTimeoutS: 1,
  scenarios: ['plain', 'memory', 'manual', 'redis', 'haproxy'],
  loads: ['low', 'closed', 'open'],
  rounds: 3,
  capacity: 'probe',
  outDir: join(__dirname, 'results'),
  verbose: false,
};

const TITLES: Record<ScenarioName, string> = {
  plain: 'unprotected app',
  memory: 'nestjs-balancer (memory, probed)',
  manual: 'nestjs-balancer (memory, K by hand)',
  redis: 'nestjs-balancer (Redis, 2 workers)',
  haproxy: 'HAProxy maxconn K + queue',
};

interface ModelStats {
  current: number;
  peak: number;
  served: number;
  failed: number;
}

export interface PhaseResult extends LoadResult {
  load: LoadName;
  /** 1-based round number. */
  round?: number;
  /** The box's 1-minute load average (`os.loadavg()[0]`) when the phase ended. */
  boxLoad?: number;
  /** The model's own view: highest in-flight, served and failed (500) during the phase. */
  model: ModelStats | null;
  /** Where the CPU went during the phase (warm-up and drain included), % of one core. */
  cpu: {
    wallMs: number;
    /** This process: the load generator. */
    generator: number;
    byFixture: Record<string, number | null>;
    /** The whole machine, % of one core (200 = both cores of a 2-core box busy). */
    machine: number | null;
    /** Machine-wide TCP counter increments (listen-queue overflows, resets): any process's. */
    tcp: Record<string, number> | null;
  };
  /** Each app process's event loop during the phase: utilization and delay. */
  appLoops: Array<{
    elu: number;
    delayP99Ms: number;
    delayMaxMs: number;
    connections: number;
  } | null>;
}

export interface ScenarioResult {
  name: ScenarioName;
  title: string;
  /** Why the scenario did not run. */
  skipped?: string;
  /** Capacity the balancer enforced, and where it came from. */
  capacity?: { value: number | null; source: string; probeState?: string; probeMs?: number | null };
  /** Per load, the median round (what the table shows). */
  phases: PhaseResult[];
  /** Every round of every load, in the order run. */
  rounds: PhaseResult[];
  /** Phases that could not run. */
  errors?: string[];
}

export interface TargetCheck {
  target: string;
  pass: boolean;
  detail: string;
}

// ---------------------------------------------------------------------------------------------

function findBinary(name: string, known: string[]): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return known.find((p) => existsSync(p)) ?? null;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
  const body = (await res.body.json()) as T;
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
  return body;
}

async function post(url: string): Promise<void> {
  const res = await request(url, { method: 'POST', headersTimeout: 5000, bodyTimeout: 5000 });
  await res.body.dump();
}

interface StatsDoc {
  endpoints: Record<
    string,
    {
      capacity: number | null;
      capacity_source: string;
      probe?: { state: string; duration_ms: number | null };
    }
  >;
}

/** Wait until every worker reports a capacity for /predict (the startup probe is done). */
async function waitForCapacity(
  urls: string[],
  deadlineMs: number,
): Promise<ScenarioResult['capacity']> {
  const deadline = Date.now() + deadlineMs;
  let last: StatsDoc['endpoints'][string] | undefined;
  while (Date.now() < deadline) {
    const docs = await Promise.all(
      urls.map((u) => getJson<StatsDoc>(`${u}/balancer/stats`).catch(() => null)),
    );
    const pools = docs.map((d) => d?.endpoints?.['/predict']);
    last = pools[0] ?? last;
    if (pools.every((p) => p && p.capacity !== null && p.capacity_source !== 'probing')) {
      const p = pools[0]!;
      return {
        value: p.capacity,
        source: p.capacity_source,
        probeState: p.probe?.state,
        probeMs: p.probe?.duration_ms,
      };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `no capacity for /predict after ${deadlineMs / 1000} s (last: ${JSON.stringify(last ?? null)})`,
  );
}

function haproxyConfig(port: number, appPort: number, cfg: OverloadConfig): string {
  // What an operator would write: one server with maxconn K; excess requests wait in the
  // backend queue up to `timeout queue` (our queue timeout), then get HAProxy's 503.
  const q = Math.round(cfg.queueTimeoutS * 1000);
  return `global
  maxconn 8000

defaults
  mode http
  maxconn 8000
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout queue ${q}ms

frontend bench
  bind 127.0.0.1:${port}
  default_backend app

backend app
  server app1 127.0.0.1:${appPort} maxconn ${cfg.k}
`;
}

interface Prepared {
  /** Where the load goes. */
  urls: string[];
  /** The Nest app processes (behind HAProxy, or the targets themselves). */
  appUrls: string[];
  capacity?: ScenarioResult['capacity'];
}

async function prepare(
  name: ScenarioName,
  cfg: OverloadConfig,
  group: FixtureGroup,
  modelUrl: string,
  tmp: string,
): Promise<Prepared | string> {
  const verbose = cfg.verbose;
  const probeBuilt = PROBE_PROVIDERS.length > 0;
  const balancedEnv = {
    MODEL_URL: modelUrl,
    APP_MODE: 'balanced',
    QUEUE_TIMEOUT: String(cfg.queueTimeoutS),
    // Until the probe exists, or when asked, the scenario runs with the true K set by hand.
    ...(probeBuilt && cfg.capacity === 'probe' ? {} : { CAPACITY: String(cfg.k) }),
  };
  const url = (port: number): string => `http://127.0.0.1:${port}`;
  switch (name) {
    case 'plain': {
      const app = await group.start('app', 'app.ts', [], {
        env: { MODEL_URL: modelUrl, APP_MODE: 'plain' },
        verbose,
      });
      return { urls: [url(app.port)], appUrls: [url(app.port)] };
    }
    case 'memory': {
      const app = await group.start('app', 'app.ts', [], {
        env: { ...balancedEnv, STORAGE: 'memory' },
        verbose,
      });
      const urls = [url(app.port)];
      return { urls, appUrls: urls, capacity: await waitForCapacity(urls, 120_000) };
    }
    case 'manual': {
      // The same admission with the true K: separates the mechanism from the probe's estimate.
      const env = { ...balancedEnv, STORAGE: 'memory', CAPACITY: String(cfg.k) };
      const app = await group.start('app', 'app.ts', [], { env, verbose });
      const urls = [url(app.port)];
      return { urls, appUrls: urls, capacity: await waitForCapacity(urls, 120_000) };
    }
    case 'redis': {
      let redisUrl = process.env.REDIS_URL;
      if (!redisUrl) {
        const bin = findBinary('redis-server', [
          '/usr/bin/redis-server',
          '/usr/local/bin/redis-server',
        ]);
        if (!bin) return 'redis-server not found on PATH and REDIS_URL not set';
        const port = await freePort();
        const args = [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
        ];
        await group.start('redis', 'guard.ts', [String(port), bin, ...args], { verbose });
        redisUrl = `redis://127.0.0.1:${port}`;
      }
      // A fresh prefix per run: no probe result or lease from an earlier run is reused.
      const env = {
        ...balancedEnv,
        STORAGE: 'redis',
        REDIS_URL: redisUrl,
        KEY_PREFIX: `bench-${process.pid}-${Date.now()}`,
      };
      const workers = await Promise.all([
        group.start('worker1', 'app.ts', [], { env, verbose }),
        group.start('worker2', 'app.ts', [], { env, verbose }),
      ]);
      const urls = workers.map((w) => url(w.port));
      return { urls, appUrls: urls, capacity: await waitForCapacity(urls, 120_000) };
    }
    case 'haproxy': {
      const bin =
        process.env.HAPROXY_BIN ??
        findBinary('haproxy', ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy']);
      if (!bin || !existsSync(bin))
        return 'haproxy binary not found (Debian: apt-get install haproxy)';
      const app = await group.start('app', 'app.ts', [], {
        env: { MODEL_URL: modelUrl, APP_MODE: 'plain' },
        verbose,
      });
      const port = await freePort();
      const file = join(tmp, 'haproxy.cfg');
      await writeFile(file, haproxyConfig(port, app.port, cfg));
      await group.start('haproxy', 'guard.ts', [String(port), bin, '-db', '-f', file], { verbose });
      return {
        urls: [url(port)],
        appUrls: [url(app.port)],
        capacity: { value: cfg.k, source: 'maxconn' },
      };
    }
  }
}

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

async function runPhase(
  load: 'closed' | 'open',
  urls: string[],
  modelUrl: string,
  cfg: OverloadConfig,
  group: FixtureGroup,
  appUrls: string[],
): Promise<PhaseResult> {
  const target: LoadTarget = { urls, path: '/predict', method: 'POST', body: { input: 'bench' } };
  const capacityRate = (cfg.k * 1000) / cfg.s;
  const common = {
    target,
    warmupMs: cfg.warmupS * 1000,
    requestTimeoutMs: cfg.queueTimeoutS * 1000 + 15_000,
    drainTimeoutMs: cfg.queueTimeoutS * 1000 + 10_000,
  };
  await post(`${modelUrl}/reset`);
  const loops = (): Promise<PhaseResult['appLoops']> =>
    Promise.all(
      appUrls.map((u) =>
        getJson<PhaseResult['appLoops'][number]>(`${u}/__bench/loop`).catch(() => null),
      ),
    );
  await loops();
  const mark = cpuMark(group);
  let result: LoadResult;
  if (load === 'open') {
    const rate = cfg.rate * capacityRate;
    result = await runOpenLoop({
      ...common,
      durationMs: cfg.durationS * 1000,
      rate,
      arrivals: cfg.arrivals,
      maxRequests: Math.ceil(rate * (cfg.durationS + cfg.warmupS) * 1.5) + 100,
      maxInFlight: Math.max(2000, Math.ceil(rate * (cfg.queueTimeoutS + 2) * 2)),
    });
  } else {
    result = await runClosedLoop({
      ...common,
      durationMs: cfg.durationS * 1000,
      clients: cfg.clients * cfg.k,
      maxRequests: 5_000_000,
    });
  }
  const cpu = cpuSince(mark, group);
  const appLoops = await loops();
  const model = await getJson<ModelStats>(`${modelUrl}/stats`).catch(() => null);
  return { load, ...result, model, cpu, appLoops };
}

/** Clients per target in the low-load phase: a quarter of K, far below every cap. */
function lowClientsPerTarget(cfg: OverloadConfig): number {
  return Math.max(1, Math.floor(cfg.k / 4));
}

/**
 * Low load, all scenarios at once: each request goes to the next target in turn, so the
 * machine's noise falls on every scenario alike and the small differences (added latency)
 * are not drowned by it. Each target sees about K/4 requests in flight.
 */
async function runLowPhase(active: Live[], cfg: OverloadConfig): Promise<Map<Live, PhaseResult>> {
  const owner = new Map<string, Live>();
  for (const live of active) for (const u of live.prepared!.urls) owner.set(u, live);
  const urls = [...owner.keys()];
  interface Acc {
    byStatus: Record<string, number>;
    lat: number[];
    lostByReason: Record<string, number>;
  }
  const acc = new Map<Live, Acc>(
    active.map((l) => [l, { byStatus: {}, lat: [], lostByReason: {} }]),
  );
  await Promise.all(active.map((l) => post(`${l.modelUrl}/reset`)));
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
    onResponse: (status, ms, url, measured) => {
      if (!measured) return;
      const a = acc.get(owner.get(url)!)!;
      a.byStatus[status] = (a.byStatus[status] ?? 0) + 1;
      if (status >= 200 && status < 300) a.lat.push(ms);
    },
    onLost: (reason, url, measured) => {
      if (!measured) return;
      const a = acc.get(owner.get(url)!)!;
      a.lostByReason[reason] = (a.lostByReason[reason] ?? 0) + 1;
    },
  });
  const out = new Map<Live, PhaseResult>();
  for (const live of active) {
    const a = acc.get(live)!;
    const answered = Object.values(a.byStatus).reduce((x, y) => x + y, 0);
    const lost = Object.values(a.lostByReason).reduce((x, y) => x + y, 0);
    out.set(live, {
      load: 'low',
      durationS: durationMs / 1000,
      sent: answered + lost,
      byStatus: a.byStatus,
      ok: a.lat.length,
      goodput: a.lat.length / (durationMs / 1000),
      latency: summarize(a.lat),
      lost,
      lostByReason: a.lostByReason,
      notSent: 0,
      offered: `${lowClientsPerTarget(cfg)} clients per target, interleaved`,
      model: await getJson<ModelStats>(`${live.modelUrl}/stats`).catch(() => null),
      cpu: cpuSince(marks.get(live)!, live.group),
      appLoops: [],
    });
  }
  return out;
}

/** One scenario's running fixtures. */
interface Live {
  result: ScenarioResult;
  group: FixtureGroup;
  tmp: string;
  modelUrl?: string;
  prepared?: Prepared;
}

function failure(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  const cause = message.split('\n').find((l) => /\bError\b/.test(l));
  return `failed: ${message.split('\n')[0]}${cause ? ` (${cause.trim()})` : ''}`;
}

/** Start a scenario's processes and wait until it is ready (probe done). Never throws. */
async function setUp(
  name: ScenarioName,
  cfg: OverloadConfig,
  log: (s: string) => void,
): Promise<Live> {
  const live: Live = {
    result: {
      name,
      // With --capacity manual the memory scenario is not probed: say so.
      title:
        name === 'memory' && cfg.capacity === 'manual' ? 'nestjs-balancer (memory)' : TITLES[name],
      phases: [],
      rounds: [],
    },
    group: new FixtureGroup(),
    tmp: await mkdtemp(join(tmpdir(), 'bench-overload-')),
  };
  try {
    // Each scenario has its own model, so a scenario never inherits another one's backlog.
    const model = await live.group.start('model', 'model-server.ts', [], {
      env: { MODEL_K: String(cfg.k), MODEL_S: String(cfg.s), MODEL_SHAPE: 'knee' },
      verbose: cfg.verbose,
    });
    live.modelUrl = `http://127.0.0.1:${model.port}`;
    const prepared = await prepare(name, cfg, live.group, live.modelUrl, live.tmp);
    if (typeof prepared === 'string') {
      live.result.skipped = prepared;
      log(`  ${name}: skipped (${prepared})`);
    } else {
      live.prepared = prepared;
      live.result.capacity = prepared.capacity;
      // A fresh process runs its first requests cold (lazy loading, JIT): prime it unmeasured.
      await runClosedLoop({
        target: { urls: prepared.urls, path: '/predict', method: 'POST', body: { input: 'prime' } },
        clients: Math.max(1, Math.floor(cfg.k / 2)),
        durationMs: 2000,
        requestTimeoutMs: 10_000,
        drainTimeoutMs: 10_000,
        maxRequests: 100_000,
      });
      const c = prepared.capacity;
      log(
        `  ${name}: ready${c ? `, capacity ${c.value} (${c.source}${c.probeMs ? `, probe ${c.probeMs} ms` : ''})` : ''}`,
      );
    }
  } catch (err) {
    live.result.skipped = failure(err);
    log(`  ${name}: ${live.result.skipped}`);
    if (cfg.verbose) log((err as Error).message);
  }
  if (live.result.skipped) await tearDown(live);
  return live;
}

async function tearDown(live: Live): Promise<void> {
  await live.group.stopAll();
  await rm(live.tmp, { recursive: true, force: true });
}

/** The round whose goodput (overload) or mean latency (low load) is the median. */
function medianRound(rounds: PhaseResult[]): PhaseResult {
  const key = (p: PhaseResult): number =>
    p.load === 'low' ? (p.latency.meanMs ?? Infinity) : p.goodput;
  const sorted = [...rounds].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/**
 * Every scenario is started first (one after another, so probes do not compete), then the
 * phases run interleaved: for each round and load, each scenario in turn (order rotated per
 * round), so machine noise hits them alike. The median round per scenario and load is shown.
 */
async function runScenarios(
  cfg: OverloadConfig,
  log: (s: string) => void,
): Promise<ScenarioResult[]> {
  const lives: Live[] = [];
  try {
    for (const name of cfg.scenarios) lives.push(await setUp(name, cfg, log));
    const active = lives.filter((l) => !l.result.skipped);
    for (let round = 0; round < cfg.rounds; round++) {
      for (const load of cfg.loads) {
        if (load === 'low') {
          try {
            const results = await runLowPhase(active, cfg);
            for (const [live, p] of results) {
              p.round = round + 1;
              p.boxLoad = loadavg()[0];
              live.result.rounds.push(p);
              log(
                `  round ${round + 1} ${live.result.name}/low: mean ${fmtMs(p.latency.meanMs, 2)} ` +
                  `p50 ${fmtMs(p.latency.p50Ms, 2)} p99 ${fmtMs(p.latency.p99Ms, 2)} ms, ${p.ok} ok, lost ${p.lost}; ` +
                  `machine ${p.cpu.machine}`,
              );
            }
          } catch (err) {
            for (const live of active) {
              live.result.errors = [
                ...(live.result.errors ?? []),
                `low round ${round + 1}: ${failure(err)}`,
              ];
            }
            log(`  low: ${failure(err)}`);
          }
          continue;
        }
        const order = active.map((_, i) => active[(i + round) % active.length]);
        for (const live of order) {
          const { name } = live.result;
          try {
            const p = await runPhase(
              load,
              live.prepared!.urls,
              live.modelUrl!,
              cfg,
              live.group,
              live.prepared!.appUrls,
            );
            p.round = round + 1;
            p.boxLoad = loadavg()[0];
            live.result.rounds.push(p);
            log(
              `  round ${round + 1} ${name}/${load} (box load ${p.boxLoad.toFixed(2)}): ${p.goodput.toFixed(1)} 2xx/s, p50 ${fmtMs(p.latency.p50Ms)} ` +
                `p99 ${fmtMs(p.latency.p99Ms)} ms, ${JSON.stringify(p.byStatus)}, lost ${p.lost}; CPU % gen ` +
                `${p.cpu.generator} ${JSON.stringify(p.cpu.byFixture)} machine ${p.cpu.machine}; ` +
                `tcp ${JSON.stringify(p.cpu.tcp)}; ` +
                `app loop ${JSON.stringify(p.appLoops)}`,
            );
          } catch (err) {
            live.result.errors = [
              ...(live.result.errors ?? []),
              `${load} round ${round + 1}: ${failure(err)}`,
            ];
            log(`  ${name}/${load}: ${failure(err)}`);
          }
        }
      }
    }
    for (const live of active) {
      for (const load of cfg.loads) {
        const rounds = live.result.rounds.filter((p) => p.load === load);
        if (rounds.length) live.result.phases.push(medianRound(rounds));
      }
    }
  } finally {
    for (const live of lives.reverse()) await tearDown(live);
  }
  return lives.reverse().map((l) => l.result);
}

// ---------------------------------------------------------------------------------------------

function fiveXx(p: PhaseResult): string {
  const parts = Object.entries(p.byStatus)
    .filter(([s]) => Number(s) >= 500)
    .map(([s, n]) => `${s}: ${n}`);
  return parts.length ? parts.join(', ') : '0';
}

function phase(r: ScenarioResult | undefined, load: LoadName): PhaseResult | undefined {
  return r?.phases.find((p) => p.load === load);
}

function checkTargets(results: ScenarioResult[], cfg: OverloadConfig): TargetCheck[] {
  const capacityRate = (cfg.k * 1000) / cfg.s;
  const by = (n: ScenarioName): ScenarioResult | undefined =>
    results.find((r) => r.name === n && !r.skipped);
  const checks: TargetCheck[] = [];
  for (const load of ['closed', 'open'] as const) {
    for (const ours of ['memory', 'manual', 'redis'] as const) {
      const p = phase(by(ours), load);
      if (!p) continue;
      const e500 = p.byStatus['500'] ?? 0;
      checks.push({
        target: `${ours}/${load}: goodput >= 0.9 x K/S, zero 500s`,
        pass: p.goodput >= 0.9 * capacityRate && e500 === 0,
        detail: `${p.goodput.toFixed(1)} 2xx/s = ${(p.goodput / capacityRate).toFixed(2)} x K/S, ${e500} x 500`,
      });
      const h = phase(by('haproxy'), load);
      if (h) {
        checks.push({
          target: `${ours}/${load}: goodput and p99 no worse than HAProxy`,
          pass:
            p.goodput >= h.goodput * 0.97 &&
            (p.latency.p99Ms ?? Infinity) <= (h.latency.p99Ms ?? Infinity) * 1.05 + 1,
          detail:
            `goodput ${p.goodput.toFixed(1)} vs ${h.goodput.toFixed(1)}, ` +
            `p99 ${fmtMs(p.latency.p99Ms)} vs ${fmtMs(h.latency.p99Ms)} ms (tolerance: 3 % goodput, 5 % + 1 ms p99)`,
        });
      }
    }
    const mem = phase(by('memory'), load);
    const red = phase(by('redis'), load);
    if (mem && red) {
      checks.push({
        target: `redis/${load}: goodput within 5 % of memory (medians)`,
        pass: red.goodput >= mem.goodput * 0.95,
        detail: `${red.goodput.toFixed(1)} vs ${mem.goodput.toFixed(1)} 2xx/s = ${(red.goodput / mem.goodput).toFixed(3)}`,
      });
    }
    const plain = phase(by('plain'), load);
    if (plain) {
      checks.push({
        target: `plain/${load}: far below K/S (< 0.5 x)`,
        pass: plain.goodput < 0.5 * capacityRate,
        detail: `${plain.goodput.toFixed(1)} 2xx/s = ${(plain.goodput / capacityRate).toFixed(2)} x K/S`,
      });
    }
  }
  const lost = results
    .flatMap((r) => r.rounds.map((p) => ({ r, p })))
    .filter(({ p }) => p.lost > 0);
  const failed = results.filter((r) => r.errors?.length);
  checks.push({
    target: 'no lost requests in any phase (every round)',
    pass: lost.length === 0 && failed.length === 0,
    detail: lost.length
      ? lost
          .map(
            ({ r, p }) =>
              `${r.name}/${p.load} round ${p.round}: ${p.lost} ${JSON.stringify(p.lostByReason)}`,
          )
          .join(', ')
      : failed.length
        ? `phases failed: ${failed.map((r) => r.errors!.join('; ')).join('; ')}`
        : 'all answered',
  });
  const base = phase(by('plain'), 'low');
  const ha = phase(by('haproxy'), 'low');
  for (const ours of ['memory', 'redis'] as const) {
    const p = phase(by(ours), 'low');
    if (!base?.latency.p50Ms || !ha?.latency.p50Ms || !p?.latency.p50Ms) continue;
    const added = p.latency.p50Ms - base.latency.p50Ms;
    const hop = ha.latency.p50Ms - base.latency.p50Ms;
    checks.push({
      target: `${ours}/low: added latency below HAProxy's extra hop (medians)`,
      pass: added < hop,
      detail:
        `p50 ${signed(added)} ms vs ${signed(hop)} ms over the plain app ` +
        `(means ${signed(p.latency.meanMs! - base.latency.meanMs!)} vs ${signed(ha.latency.meanMs! - base.latency.meanMs!)})`,
    });
  }
  return checks;
}

/** The box's 1-minute load average at the end of each round of a load, in round order. */
function boxLoad(r: ScenarioResult, load: LoadName): string {
  return r.rounds
    .filter((p) => p.load === load && p.boxLoad !== undefined)
    .map((p) => p.boxLoad!.toFixed(2))
    .join(' / ');
}

/** Redis vs memory vs HAProxy from this one run: medians of the interleaved rounds. */
function summary(results: ScenarioResult[], cfg: OverloadConfig): string {
  const capacityRate = (cfg.k * 1000) / cfg.s;
  const by = (n: ScenarioName) => results.find((r) => r.name === n && !r.skipped);
  const base = phase(by('plain'), 'low')?.latency.p50Ms;
  const ratio = (n: ScenarioName, load: LoadName): string => {
    const p = phase(by(n), load);
    return p ? (p.goodput / capacityRate).toFixed(3) : '-';
  };
  const added = (n: ScenarioName): string => {
    const p = phase(by(n), 'low')?.latency.p50Ms;
    return p !== undefined && p !== null && base ? signed(p - base) : '-';
  };
  const loads = results.flatMap((r) => r.rounds.map((p) => p.boxLoad ?? 0));
  const rows = (['memory', 'redis', 'haproxy'] as const)
    .filter((n) => by(n))
    .map((n) => [by(n)!.title, ratio(n, 'closed'), ratio(n, 'open'), added(n)]);
  return [
    `Summary (median of ${cfg.rounds} interleaved round${cfg.rounds > 1 ? 's' : ''}; box load average ` +
      `${loads.length ? `${Math.min(...loads).toFixed(2)} to ${Math.max(...loads).toFixed(2)}` : '-'} ` +
      `on ${cpus().length} CPUs during the phases):`,
    '',
    markdownTable(['scenario', 'closed x K/S', 'open x K/S', 'added p50 ms at low load'], rows, [
      'l',
      'r',
      'r',
      'r',
    ]),
  ].join('\n');
}

function signed(v: number, digits = 2): string {
  return `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
}

function render(results: ScenarioResult[], checks: TargetCheck[], cfg: OverloadConfig): string {
  const capacityRate = (cfg.k * 1000) / cfg.s;
  const lines: string[] = [];
  lines.push(
    `Model: K=${cfg.k} slots, S=${cfg.s} ms, knee shape (slower above K, 500 at 3 x K in flight); ` +
      `capacity K/S = ${capacityRate.toFixed(0)} req/s. Queue timeout ${cfg.queueTimeoutS} s (ours and HAProxy's \`timeout queue\`). ` +
      `Closed loop: ${cfg.clients * cfg.k} clients; open loop: ${(cfg.rate * capacityRate).toFixed(0)} req/s ${cfg.arrivals}; ` +
      `${cfg.durationS} s measured after ${cfg.warmupS} s warm-up` +
      `${cfg.rounds > 1 ? `, median of ${cfg.rounds} interleaved rounds` : ''}. ` +
      `${cpus().length} CPUs, Node ${process.version}. "box CPU" is the whole machine during the phase (${cpus().length * 100} % = saturated).`,
  );
  lines.push('');
  const rows: Array<Array<string | number>> = [];
  for (const r of results) {
    if (r.skipped) {
      rows.push([
        r.title,
        '-',
        `skipped: ${r.skipped.split('\n')[0]}`,
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
      continue;
    }
    const cap = r.capacity ? `${r.capacity.value ?? '?'} (${r.capacity.source})` : '-';
    for (const p of r.phases.filter((x) => x.load !== 'low')) {
      rows.push([
        r.title,
        cap,
        p.load === 'closed' ? `closed ${p.offered}` : `open ${p.offered}`,
        p.goodput.toFixed(1),
        (p.goodput / capacityRate).toFixed(2),
        fmtMs(p.latency.p50Ms, 0),
        fmtMs(p.latency.p99Ms, 0),
        fiveXx(p),
        p.byStatus['504'] ?? 0,
        p.lost,
        p.model ? p.model.peak : '-',
        p.cpu.machine === null ? '-' : p.cpu.machine.toFixed(0),
        boxLoad(r, p.load),
      ]);
    }
  }
  lines.push(
    markdownTable(
      [
        'scenario',
        'capacity',
        'load',
        'goodput 2xx/s',
        'x K/S',
        'p50 ms',
        'p99 ms',
        '5xx by status',
        '504',
        'lost',
        'model peak in flight',
        'box CPU %',
        'box load 1 min (rounds)',
      ],
      rows,
      ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  lines.push('');
  lines.push(summary(results, cfg));
  const low = results.filter((r) => !r.skipped && phase(r, 'low'));
  if (low.length) {
    const base = phase(
      results.find((r) => r.name === 'plain' && !r.skipped),
      'low',
    );
    lines.push('');
    lines.push(
      `Low load: ${lowClientsPerTarget(cfg)} clients per scenario (K/4), requests interleaved across the scenarios, ` +
        `${cfg.lowDurationS} s. Latency includes the model's S; "added" is the difference to the plain app.`,
    );
    lines.push('');
    lines.push(
      markdownTable(
        ['scenario', 'requests', 'mean ms', 'p50 ms', 'p99 ms', 'added p50 ms', 'added mean ms'],
        low.map((r) => {
          const p = phase(r, 'low')!;
          const d = (a: number | null, b: number | null | undefined): string =>
            r.name === 'plain'
              ? '(baseline)'
              : a === null || b === null || b === undefined
                ? '-'
                : signed(a - b);
          return [
            r.title,
            p.ok,
            fmtMs(p.latency.meanMs, 2),
            fmtMs(p.latency.p50Ms, 2),
            fmtMs(p.latency.p99Ms, 2),
            d(p.latency.p50Ms, base?.latency.p50Ms),
            d(p.latency.meanMs, base?.latency.meanMs),
          ];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  lines.push('');
  lines.push('Targets:');
  for (const c of checks) lines.push(`- ${c.pass ? 'PASS' : 'MISS'} ${c.target}: ${c.detail}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

const FLAGS: Record<string, keyof OverloadConfig> = {
  k: 'k',
  s: 's',
  duration: 'durationS',
  'low-duration': 'lowDurationS',
  warmup: 'warmupS',
  clients: 'clients',
  rate: 'rate',
  arrivals: 'arrivals',
  'queue-timeout': 'queueTimeoutS',
  scenarios: 'scenarios',
  loads: 'loads',
  rounds: 'rounds',
  capacity: 'capacity',
  out: 'outDir',
};

const USAGE = `npm run bench:overload -- [options]
  --k N               model slots K (default ${DEFAULT_CONFIG.k})
  --s MS              service time S in ms (default ${DEFAULT_CONFIG.s})
  --duration S        measured seconds per overload phase (default ${DEFAULT_CONFIG.durationS})
  --low-duration S    measured seconds of the low-load phase (default ${DEFAULT_CONFIG.lowDurationS})
  --warmup S          unmeasured seconds before each phase (default ${DEFAULT_CONFIG.warmupS})
  --clients M         closed loop: M x K clients (default ${DEFAULT_CONFIG.clients})
  --rate F            open loop: F x K/S arrivals per second (default ${DEFAULT_CONFIG.rate})
  --arrivals KIND     poisson | fixed (default ${DEFAULT_CONFIG.arrivals})
  --queue-timeout S   our queue timeout = HAProxy timeout queue (default ${DEFAULT_CONFIG.queueTimeoutS})
  --scenarios LIST    of plain,memory,manual,redis,haproxy (default all)
  --loads LIST        of low,closed,open (default all)
  --rounds N          run every load N times, interleaved; report the median (default ${DEFAULT_CONFIG.rounds})
  --capacity KIND     probe | manual: memory and Redis caps from the probe or K by hand (default ${DEFAULT_CONFIG.capacity})
  --out DIR           results directory (default bench/results); --no-write to skip
  --verbose           show the fixtures' output`;

/** Parse `--flag value` / `--flag=value` arguments over the defaults. */
export function parseArgs(argv: string[]): OverloadConfig {
  const cfg: OverloadConfig = { ...DEFAULT_CONFIG };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (arg === '--verbose') {
      cfg.verbose = true;
      continue;
    }
    if (arg === '--no-write') {
      cfg.outDir = null;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = m ? FLAGS[m[1]] : undefined;
    if (!m || !key) throw new Error(`unknown argument ${arg}\n${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (key === 'scenarios' || key === 'loads') {
      const allowed: string[] =
        key === 'scenarios' ? DEFAULT_CONFIG.scenarios : DEFAULT_CONFIG.loads;
      const list = value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);
      const bad = list.filter((v) => !allowed.includes(v));
      if (bad.length)
        throw new Error(`--${m[1]}: unknown ${bad.join(', ')} (allowed: ${allowed.join(', ')})`);
      (cfg as unknown as Record<string, unknown>)[key] = list;
    } else if (key === 'arrivals') {
      if (value !== 'poisson' && value !== 'fixed') throw new Error('--arrivals: poisson or fixed');
      cfg.arrivals = value;
    } else if (key === 'capacity') {
      if (value !== 'probe' && value !== 'manual') throw new Error('--capacity: probe or manual');
      cfg.capacity = value;
    } else if (key === 'outDir') {
      cfg.outDir = value;
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`--${m[1]} must be a positive number`);
      (cfg as unknown as Record<string, unknown>)[key] =
        key === 'k' || key === 'rounds' ? Math.round(n) : n;
    }
  }
  return cfg;
}

/** Rough wall time of a run, seconds (startup and probe included). */
export function estimateSeconds(cfg: OverloadConfig): number {
  const overload =
    cfg.loads.filter((l) => l !== 'low').length * (cfg.warmupS + cfg.durationS + cfg.queueTimeoutS);
  const low = cfg.loads.includes('low') ? cfg.warmupS + cfg.lowDurationS : 0;
  const startup = cfg.scenarios.reduce((a, s) => a + (s === 'memory' || s === 'redis' ? 16 : 6), 0);
  return startup + cfg.rounds * (low + cfg.scenarios.length * overload);
}

/** Run the overload benchmark; used by `npm run bench:overload` and by bench/run.ts. */
export async function runOverloadBench(
  args?: Partial<OverloadConfig> | string[],
): Promise<{ title: string; markdown: string; data: unknown }> {
  const cfg: OverloadConfig = Array.isArray(args)
    ? parseArgs(args)
    : { ...DEFAULT_CONFIG, ...args };
  const log = (s: string): void => console.error(s);
  log(
    `overload bench: K=${cfg.k} S=${cfg.s} ms, scenarios ${cfg.scenarios.join(',')}, loads ${cfg.loads.join(',')} ` +
      `(about ${Math.round(estimateSeconds(cfg))} s)`,
  );
  if (PROBE_PROVIDERS.length === 0)
    log(
      '  note: the startup probe is not built yet; balancer scenarios use capacity K set by hand',
    );
  const results: ScenarioResult[] = [];
  results.push(...(await runScenarios(cfg, log)));
  const checks = checkTargets(results, cfg);
  const title = `Overload: goodput under ${cfg.clients} x K clients and ${cfg.rate} x K/S arrivals`;
  const markdown = render(results, checks, cfg);
  const data = {
    generatedAt: new Date().toISOString(),
    config: cfg,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      haproxy: haproxyVersion(),
    },
    probeBuilt: PROBE_PROVIDERS.length > 0,
    scenarios: results,
    targets: checks,
  };
  if (cfg.outDir) {
    await mkdir(cfg.outDir, { recursive: true });
    await writeFile(join(cfg.outDir, 'overload-latest.md'), `## ${title}\n\n${markdown}\n`);
    await writeFile(join(cfg.outDir, 'overload-latest.json'), JSON.stringify(data, null, 2) + '\n');
  }
  return { title, markdown, data };
}

function haproxyVersion(): string | null {
  const bin =
    process.env.HAPROXY_BIN ??
    findBinary('haproxy', ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy']);
  if (!bin) return null;
  try {
    return execFileSync(bin, ['-v'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return null;
  }
}

if (require.main === module) {
  let cfg: OverloadConfig;
  try {
    cfg = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  // Bounded in time whatever happens: the children die with us (IPC) and by the exit hook.
  const watchdog = setTimeout(
    () => {
      console.error('overload bench: watchdog expired, stopping');
      process.exit(1);
    },
    (estimateSeconds(cfg) * 2 + 180) * 1000,
  );
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  runOverloadBench(cfg)
    .then(({ title, markdown }) => {
      console.log(`\n## ${title}\n\n${markdown}\n`);
      if (cfg.outDir) console.log(`written: ${join(cfg.outDir, 'overload-latest.md')} and .json`);
      process.exit(0);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
