import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROBE_PROVIDERS } from '../../src/probe/probe.parts';
import { runClosedLoop } from '../lib/load';
import { FixtureGroup, freePort } from '../lib/procs';
import { failure, findBinary, getJson, haproxyBinary } from './http';
import {
  queueTarget,
  type LoadName,
  type OverloadConfig,
  type ScenarioName,
  type ScenarioResult,
} from './types';

/**
 * The fronts of the overload benchmark. Each scenario has its own simulated model process (K
 * slots, service time S) that its Nest app(s) call over loopback HTTP, and its own Redis when
 * it uses one, so no scenario inherits another one's backlog.
 */

export interface ScenarioSpec {
  /** Table title; `{T}` stands for the queue target in ms. */
  title: string;
  front: 'plain' | 'balanced' | 'haproxy';
  storage?: 'memory' | 'redis';
  /** Capacity K by hand, whatever `--capacity` says. */
  manual?: boolean;
  /** Started with `queueTargetMs` (2 x S unless `--queue-target`). */
  queueTarget?: boolean;
  /** Started with `tenantHeader: TENANT_HEADER`. */
  tenantHeader?: boolean;
  /** The loads that say something about this scenario (the others are not run on it). */
  loads: LoadName[];
}

/** The header the `tenants` load sends its tenant key in. */
export const TENANT_HEADER = 'x-api-key';

export const SCENARIOS: Record<ScenarioName, ScenarioSpec> = {
  plain: { title: 'unprotected app', front: 'plain', loads: ['low', 'closed', 'open'] },
  memory: {
    title: 'nestjs-balancer (memory, probed)',
    front: 'balanced',
    storage: 'memory',
    // The FIFO baseline of the tenants load too: the tenant header is sent and ignored.
    loads: ['low', 'closed', 'open', 'tenants'],
  },
  manual: {
    title: 'nestjs-balancer (memory, K by hand)',
    front: 'balanced',
    storage: 'memory',
    manual: true,
    loads: ['low', 'closed', 'open'],
  },
  redis: {
    title: 'nestjs-balancer (Redis, 2 workers)',
    front: 'balanced',
    storage: 'redis',
    loads: ['low', 'closed', 'open'],
  },
  haproxy: {
    title: 'HAProxy maxconn K + queue',
    front: 'haproxy',
    loads: ['low', 'closed', 'open'],
  },
  // A closed loop against a shedding server is a retry storm (every shed client asks again at
  // once): it measures the clients, not the policy, so the target scenarios run low and open.
  target: {
    title: 'nestjs-balancer (memory, queueTargetMs {T})',
    front: 'balanced',
    storage: 'memory',
    queueTarget: true,
    loads: ['low', 'open'],
  },
  'redis-target': {
    title: 'nestjs-balancer (Redis, 2 workers, queueTargetMs {T})',
    front: 'balanced',
    storage: 'redis',
    queueTarget: true,
    loads: ['low', 'open'],
  },
  tenant: {
    title: `nestjs-balancer (memory, tenantHeader ${TENANT_HEADER})`,
    front: 'balanced',
    storage: 'memory',
    tenantHeader: true,
    loads: ['tenants'],
  },
};

export function scenarioTitle(name: ScenarioName, cfg: OverloadConfig): string {
  // With --capacity manual the memory scenario is not probed: say so.
  if (name === 'memory' && cfg.capacity === 'manual') return 'nestjs-balancer (memory)';
  return SCENARIOS[name].title.replace('{T}', `${queueTarget(cfg)} ms`);
}

/** True when the scenario's cap comes from the startup probe in this configuration. */
export function isProbed(name: ScenarioName, cfg: OverloadConfig): boolean {
  const spec = SCENARIOS[name];
  return (
    spec.front === 'balanced' &&
    !spec.manual &&
    cfg.capacity === 'probe' &&
    PROBE_PROVIDERS.length > 0
  );
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

export interface Prepared {
  /** Where the load goes. */
  urls: string[];
  /** The Nest app processes (behind HAProxy, or the targets themselves). */
  appUrls: string[];
  capacity?: ScenarioResult['capacity'];
}

const url = (port: number): string => `http://127.0.0.1:${port}`;

/** A Redis for one scenario: `REDIS_URL`, or a redis-server of its own; null when neither. */
async function startRedis(group: FixtureGroup, verbose: boolean): Promise<string | null> {
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  const bin = findBinary('redis-server', ['/usr/bin/redis-server', '/usr/local/bin/redis-server']);
  if (!bin) return null;
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  await group.start('redis', 'guard.ts', [String(port), bin, ...args], { verbose });
  return `redis://127.0.0.1:${port}`;
}

async function prepare(
  name: ScenarioName,
  cfg: OverloadConfig,
  group: FixtureGroup,
  modelUrl: string,
  tmp: string,
): Promise<Prepared | string> {
  const spec = SCENARIOS[name];
  const verbose = cfg.verbose;
  const plainEnv = { MODEL_URL: modelUrl, APP_MODE: 'plain' };
  if (spec.front === 'plain') {
    const app = await group.start('app', 'app.ts', [], { env: plainEnv, verbose });
    return { urls: [url(app.port)], appUrls: [url(app.port)] };
  }
  if (spec.front === 'haproxy') {
    const bin = haproxyBinary();
    if (!bin) return 'haproxy binary not found (Debian: apt-get install haproxy)';
    const app = await group.start('app', 'app.ts', [], { env: plainEnv, verbose });
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
  const env: Record<string, string> = {
    MODEL_URL: modelUrl,
    APP_MODE: 'balanced',
    QUEUE_TIMEOUT: String(cfg.queueTimeoutS),
    STORAGE: spec.storage ?? 'memory',
    // Until the probe exists, or when asked, the scenario runs with the true K set by hand.
    ...(isProbed(name, cfg) ? {} : { CAPACITY: String(cfg.k) }),
    ...(spec.queueTarget ? { QUEUE_TARGET_MS: String(queueTarget(cfg)) } : {}),
    ...(spec.tenantHeader ? { TENANT_HEADER } : {}),
  };
  let workers = 1;
  if (spec.storage === 'redis') {
    const redisUrl = await startRedis(group, verbose);
    if (!redisUrl) return 'redis-server not found on PATH and REDIS_URL not set';
    env.REDIS_URL = redisUrl;
    // A fresh prefix per scenario and run: no probe result or lease from elsewhere is reused.
    env.KEY_PREFIX = `bench-${name}-${process.pid}-${Date.now()}`;
    workers = 2;
  }
  const apps = await Promise.all(
    Array.from({ length: workers }, (_, i) =>
      group.start(workers > 1 ? `worker${i + 1}` : 'app', 'app.ts', [], { env, verbose }),
    ),
  );
  const urls = apps.map((a) => url(a.port));
  return { urls, appUrls: urls, capacity: await waitForCapacity(urls, 120_000) };
}

/** One scenario's running fixtures. */
export interface Live {
  result: ScenarioResult;
  group: FixtureGroup;
  tmp: string;
  modelUrl?: string;
  prepared?: Prepared;
}

/** Start a scenario's processes and wait until it is ready (probe done). Never throws. */
export async function setUp(
  name: ScenarioName,
  cfg: OverloadConfig,
  log: (s: string) => void,
): Promise<Live> {
  const spec = SCENARIOS[name];
  const live: Live = {
    result: {
      name,
      title: scenarioTitle(name, cfg),
      ...(spec.queueTarget || spec.tenantHeader
        ? {
            policies: {
              ...(spec.queueTarget ? { queueTargetMs: queueTarget(cfg) } : {}),
              ...(spec.tenantHeader ? { tenantHeader: TENANT_HEADER } : {}),
            },
          }
        : {}),
      phases: [],
      rounds: [],
    },
    group: new FixtureGroup(),
    tmp: await mkdtemp(join(tmpdir(), 'bench-overload-')),
  };
  try {
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

export async function tearDown(live: Live): Promise<void> {
  await live.group.stopAll();
  await rm(live.tmp, { recursive: true, force: true });
}
