/**
 * Real workloads: does the probe's capacity fit routes that do real work?
 *
 * One app (bench/fixtures/real-app.ts) with compute-heavy routes built on libraries people use
 * — `sharp` resizing a 2400 x 1600 photo-like JPEG, `crypto.pbkdf2` and `zlib.gzip` in the
 * libuv pool — plus an LLM-style backend with continuous batching. Two copies run side by side:
 * `balanced` (every route watched, startup probe with the default settings) and `plain` (no
 * balancer). For each route: the capacity the probe chose, then 8 x K closed-loop clients
 * against each copy in turn, and balanced / unprotected throughput with the p99 of both.
 * Goal: >= 0.95 of the unprotected throughput where the unprotected route does not fail, with
 * p99 no worse.
 *
 *   npm run bench -- real
 *   ts-node --transpile-only bench/real-workloads.ts          (also writes bench/results/real-workloads-latest.*)
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { runClosedLoop, type LoadResult } from './lib/load';
import { startFixture, stopFixture, type Fixture } from './lib/procs';
import { fmtMs, markdownTable } from './lib/table';
import type { BenchSection } from './section';

const ROUTES = (process.env.REAL_ROUTES?.split(',') ?? ['resize', 'hash', 'gzip', 'generate']).map(
  (r) => r.trim(),
);
const WARMUP_MS = Number(process.env.REAL_WARMUP_MS ?? 1500);
const WINDOW_MS = Number(process.env.REAL_WINDOW_MS ?? 6000);
const ROUNDS = Number(process.env.REAL_ROUNDS ?? 2);

interface ProbeInfo {
  capacity: number | null;
  source: string;
  share: number | null;
  stopReason: string | null;
  levels: Array<{ c: number; rps: number; p99: number; ms: number; n: number }>;
  durationMs: number | null;
}

interface Row {
  route: string;
  capacity: number | null;
  share: number | null;
  clients: number;
  balancedRps: number;
  plainRps: number;
  ratio: number;
  balancedP99: number | null;
  plainP99: number | null;
  balancedP50: number | null;
  plainP50: number | null;
  balancedErrors: number;
  plainErrors: number;
  probeSeconds: number | null;
  stopReason: string | null;
}

async function probeInfo(url: string, route: string): Promise<ProbeInfo> {
  const stats = (await (await fetch(`${url}/balancer/stats`)).json()) as {
    endpoints: Record<
      string,
      {
        capacity: number | null;
        capacity_source: string;
        probe: {
          throughput_share: number | null;
          duration_ms: number | null;
          report: {
            stopReason?: string;
            levels?: Array<{
              concurrency: number;
              throughputRps: number;
              p99Ms: number;
              durationMs?: number;
              completions?: number;
            }>;
          } | null;
        };
      }
    >;
  };
  const e = stats.endpoints[`/${route}`];
  return {
    capacity: e.capacity,
    source: e.capacity_source,
    share: e.probe.throughput_share,
    stopReason: e.probe.report?.stopReason ?? null,
    durationMs: e.probe.duration_ms,
    levels: (e.probe.report?.levels ?? []).map((l) => ({
      c: l.concurrency,
      rps: l.throughputRps,
      p99: l.p99Ms,
      ms: l.durationMs ?? 0,
      n: l.completions ?? 0,
    })),
  };
}

async function load(url: string, route: string, clients: number): Promise<LoadResult> {
  return runClosedLoop({
    target: { urls: [url], path: `/${route}`, method: 'POST', body: {} },
    clients,
    // Thousands of clients take a while to connect and fill the queue: warm up longer.
    warmupMs: Math.max(WARMUP_MS, 3 * clients),
    durationMs: WINDOW_MS,
    requestTimeoutMs: 120_000,
    drainTimeoutMs: 30_000,
    maxRequests: 5_000_000,
  });
}

function errorsOf(r: LoadResult): number {
  return (
    r.lost + Object.entries(r.byStatus).reduce((n, [s, k]) => (Number(s) >= 400 ? n + k : n), 0)
  );
}

export async function runRealWorkloadsBench(): Promise<BenchSection> {
  const loadStart = loadavg();
  const env = { ROUTES: ROUTES.join(',') };
  let balanced: Fixture | undefined;
  let plain: Fixture | undefined;
  const rows: Row[] = [];
  const probes: Record<string, ProbeInfo> = {};
  try {
    // The balanced copy probes every route at startup (one after another), alone on the box.
    balanced = await startFixture('real-balanced', 'real-app.ts', [], {
      env: { ...env, APP_MODE: 'balanced' },
      readyTimeoutMs: 900_000,
    });
    plain = await startFixture('real-plain', 'real-app.ts', [], {
      env: { ...env, APP_MODE: 'plain' },
    });
    const bUrl = `http://127.0.0.1:${balanced.port}`;
    const pUrl = `http://127.0.0.1:${plain.port}`;
    for (const route of ROUTES) {
      const info = await probeInfo(bUrl, route);
      probes[route] = info;
      const k = info.capacity ?? 1;
      const clients = 8 * k;
      console.error(
        `[real] ${route}: capacity ${info.capacity} (${info.source}, share ${info.share}, ` +
          `${info.stopReason}); ${clients} clients`,
      );
      const b: LoadResult[] = [];
      const p: LoadResult[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate the order so a drift of the shared machine hits both sides alike.
        const order = round % 2 === 0 ? ['b', 'p'] : ['p', 'b'];
        for (const side of order) {
          const r = await load(side === 'b' ? bUrl : pUrl, route, clients);
          (side === 'b' ? b : p).push(r);
          console.error(
            `[real]   ${side === 'b' ? 'balanced' : 'plain   '} ${r.goodput.toFixed(1)}/s ` +
              `p50 ${fmtMs(r.latency.p50Ms)} p99 ${fmtMs(r.latency.p99Ms)} errors ${errorsOf(r)}`,
          );
        }
      }
      const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;
      const worst = (xs: Array<number | null>): number | null =>
        xs.every((x) => x === null) ? null : Math.max(...xs.map((x) => x ?? 0));
      const balancedRps = mean(b.map((r) => r.goodput));
      const plainRps = mean(p.map((r) => r.goodput));
      rows.push({
        route,
        capacity: info.capacity,
        share: info.share,
        clients,
        balancedRps,
        plainRps,
        ratio: plainRps > 0 ? balancedRps / plainRps : 0,
        balancedP99: worst(b.map((r) => r.latency.p99Ms)),
        plainP99: worst(p.map((r) => r.latency.p99Ms)),
        balancedP50: mean(b.map((r) => r.latency.p50Ms ?? 0)),
        plainP50: mean(p.map((r) => r.latency.p50Ms ?? 0)),
        balancedErrors: b.reduce((n, r) => n + errorsOf(r), 0),
        plainErrors: p.reduce((n, r) => n + errorsOf(r), 0),
        probeSeconds: info.durationMs === null ? null : info.durationMs / 1000,
        stopReason: info.stopReason,
      });
    }
  } finally {
    if (balanced) await stopFixture(balanced);
    if (plain) await stopFixture(plain);
  }
  const loadEnd = loadavg();
  const table = markdownTable(
    [
      'route',
      'capacity (probe)',
      'share of probe peak',
      'clients',
      'balanced req/s',
      'unprotected req/s',
      'balanced ÷ unprotected',
      'p50 bal / unp (ms)',
      'p99 bal / unp (ms)',
      'errors bal / unp',
      'probe took',
    ],
    rows.map((r) => [
      r.route,
      `${r.capacity ?? '—'} (${r.stopReason ?? '?'})`,
      r.share === null ? '—' : `${(r.share * 100).toFixed(1)} %`,
      r.clients,
      r.balancedRps.toFixed(1),
      r.plainRps.toFixed(1),
      `**${r.ratio.toFixed(2)}**`,
      `${fmtMs(r.balancedP50, 0)} / ${fmtMs(r.plainP50, 0)}`,
      `${fmtMs(r.balancedP99, 0)} / ${fmtMs(r.plainP99, 0)}`,
      `${r.balancedErrors} / ${r.plainErrors}`,
      r.probeSeconds === null ? '—' : `${r.probeSeconds.toFixed(1)} s`,
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  const levelLines = Object.entries(probes).map(
    ([route, p]) =>
      `- \`${route}\`: ` +
      p.levels
        .map((l) => `${l.c}→${l.rps.toFixed(0)}/s (${(l.ms / 1000).toFixed(1)} s, ${l.n} done)`)
        .join(', '),
  );
  const markdown = [
    `Routes: \`resize\` = sharp ${'(libvips)'} 2400 x 1600 JPEG -> 800 px; \`hash\` = crypto.pbkdf2`,
    `sha256 60k iterations; \`gzip\` = zlib level 6 of 1 MB text; \`generate\` = continuous batching`,
    `(12 ms + 0.128 ms x batch per step, 16 tokens, batch <= 256). Default probe settings; load =`,
    `8 x K closed-loop clients, max(${WARMUP_MS / 1000} s, 3 ms x clients) warm-up + ${WINDOW_MS / 1000} s window, ${ROUNDS} rounds per side`,
    `alternating (throughput = mean, p99 = worst round). ${cpus().length} cores shared with other`,
    `work: load average ${loadStart.map((x) => x.toFixed(2)).join(' ')} at start, ${loadEnd.map((x) => x.toFixed(2)).join(' ')} at the end.`,
    '',
    table,
    '',
    'Probe levels (concurrency → throughput, level duration, completions in the window):',
    '',
    ...levelLines,
  ].join('\n');
  return {
    title: 'Real workloads: probe capacity vs unprotected',
    markdown,
    data: { loadAverage: { start: loadStart, end: loadEnd }, rows, probes },
  };
}

if (require.main === module) {
  runRealWorkloadsBench()
    .then((s) => {
      const md = `## ${s.title}\n\nRun ${new Date().toISOString()}, Node ${process.version}.\n\n${s.markdown}\n`;
      console.log(md);
      const dir = join(__dirname, 'results');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'real-workloads-latest.md'), md);
      writeFileSync(join(dir, 'real-workloads-latest.json'), JSON.stringify(s.data, null, 2));
    })
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
