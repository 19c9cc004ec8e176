/**
 * Probe accuracy and time: the capacity the probe measures against simulated model servers
 * with a known true capacity K and service time S (examples/simulated-model.ts), both shapes,
 * with the default probe settings.
 *
 * - knee: K requests at full speed, every request much slower above K (x8 and growing), fails
 *   at 3 K. Latency limit 5 S, between the two (a shared 2-core box adds stalls of tens of ms,
 *   so a limit close to S would measure the box, not the model). Target: exactly K.
 * - queue: K slots, the rest wait (latency grows as c / K), nothing fails; the throughput knee
 *   decides. Default limits. Target: within 10 % of K.
 * - startup: the in-app startup probe (Nest + Express, same process as the model) for K = 32,
 *   S = 20 ms. Target: under 10 s.
 * - k32: K = 32 at S = 20 ms, external and startup, today's rules and the fixed 300 ms warm-up
 *   side by side in interleaved rounds (bench/probe-k32.ts).
 *
 * - slow: S = 1, 3, 10 s, knee and queue, today's rules and the old ones side by side
 *   (bench/probe-slow.ts). Target: the knee exact, the queue within 1 of K, within 120 s.
 *
 * The external cases probe a bare model server in its own process (like the CLI does).
 *
 *   npm run bench -- probe                 (part of npm run bench)
 *   BENCH_PROBE=slow npm run bench -- probe   (only the slow shapes; BENCH_PROBE=fast: only the others)
 *   BENCH_PROBE=k32 BENCH_ROUNDS=5 npm run bench -- probe   (only K = 32 at 20 ms, interleaved rounds)
 *   ts-node --transpile-only bench/probe-accuracy.ts
 */
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { ProbeRunner, ProbeService, BalancerModule, type ProbeResult } from '../src';
import { PREDICT_BODY, startModelApp } from '../test/fixtures/model-app';
import { startFixture, stopFixture } from './lib/procs';
import { OLD_CAP_MS, runSlowCases, slowTable, type SlowRun } from './probe-slow';
import { k32Table, runK32Rounds, type K32Run } from './probe-k32';
import type { BenchSection } from './section';

interface Case {
  shape: 'knee' | 'queue';
  k: number;
  s: number;
  where: 'external' | 'startup';
}

interface Row extends Case {
  measured: number | null;
  errorPct: number | null;
  ok: boolean;
  stopReason: string;
  levels: number;
  requests: number;
  seconds: number;
  note?: string;
}

const TIME_TARGET_S = 10;

const CASES: Case[] = [
  ...[
    [1, 20],
    [3, 20],
    [12, 20],
    [32, 20],
    [64, 20],
    [12, 50],
    [32, 50],
  ].map(([k, s]) => ({ shape: 'knee' as const, k, s, where: 'external' as const })),
  ...[
    [3, 20],
    [12, 20],
    [32, 20],
    [12, 50],
    [32, 50],
  ].map(([k, s]) => ({ shape: 'queue' as const, k, s, where: 'external' as const })),
  { shape: 'knee', k: 32, s: 20, where: 'startup' },
];

/** Knee-shape slowdown above K (x this, growing with in-flight / K). */
const SLOWDOWN = 8;

function limitsFor(c: Case): { latencyThresholdMs?: number } {
  return c.shape === 'knee' ? { latencyThresholdMs: 5 * c.s } : {};
}

function modelOptions(c: Case): {
  capacity: number;
  serviceTimeMs: number;
  shape: Case['shape'];
  slowdown?: number;
} {
  return {
    capacity: c.k,
    serviceTimeMs: c.s,
    shape: c.shape,
    slowdown: c.shape === 'knee' ? SLOWDOWN : undefined,
  };
}

function judge(c: Case, measured: number | null): boolean {
  if (measured === null) return false;
  return c.shape === 'knee' ? measured === c.k : Math.abs(measured - c.k) <= 0.1 * c.k;
}

async function external(c: Case, probe: { warmupLatencies?: number } = {}): Promise<Row> {
  const fixture = await startFixture(`model-${c.shape}-${c.k}-${c.s}`, 'model-server.ts', [], {
    env: {
      MODEL_K: String(c.k),
      MODEL_S: String(c.s),
      MODEL_SHAPE: c.shape,
      MODEL_SLOWDOWN: String(SLOWDOWN),
    },
  });
  const t = performance.now();
  try {
    const r = await new ProbeService().probe(
      { url: `http://127.0.0.1:${fixture.port}/predict`, method: 'POST', body: PREDICT_BODY },
      { ...limitsFor(c), ...probe },
    );
    return row(c, r, (performance.now() - t) / 1000);
  } catch (err) {
    return failed(c, err, (performance.now() - t) / 1000);
  } finally {
    await stopFixture(fixture);
  }
}

async function startup(c: Case, probe: { warmupLatencies?: number } = {}): Promise<Row> {
  const t = performance.now();
  const app = await startModelApp('express', modelOptions(c), [
    BalancerModule.forRoot({
      healthEndpoint: false,
      logger: false,
      ...limitsFor(c),
      probe,
      endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
    }),
  ]);
  try {
    await app.app.get(ProbeRunner).whenIdle();
    const res = await fetch(`${app.url}/balancer/stats`);
    const stats = (await res.json()) as {
      endpoints: Record<
        string,
        { probe: { state: string; error: string | null; report: ProbeResult | null } }
      >;
    };
    const probe = stats.endpoints['/predict'].probe;
    const seconds = (performance.now() - t) / 1000;
    if (!probe.report) return failed(c, new Error(probe.error ?? probe.state), seconds);
    return row(c, probe.report, seconds);
  } finally {
    await app.close();
  }
}

function row(c: Case, r: ProbeResult, seconds: number): Row {
  return {
    ...c,
    measured: r.maxConcurrency,
    errorPct: (100 * (r.maxConcurrency - c.k)) / c.k,
    ok: judge(c, r.maxConcurrency),
    stopReason: r.stopReason,
    levels: r.levels.length,
    requests: r.requests,
    seconds,
    note: [
      r.choice ? `share ${(r.choice.throughputShare * 100).toFixed(1)} %` : '',
      r.warnings.length ? `${r.warnings.length} warning(s)` : '',
    ]
      .filter(Boolean)
      .join(', '),
  };
}

function failed(c: Case, err: unknown, seconds: number): Row {
  return {
    ...c,
    measured: null,
    errorPct: null,
    ok: false,
    stopReason: 'error',
    levels: 0,
    requests: 0,
    seconds,
    note: (err as Error)?.message ?? String(err),
  };
}

export async function runProbeAccuracyBench(): Promise<BenchSection> {
  const rows: Row[] = [];
  const load = loadavg()[0];
  const only = process.env.BENCH_PROBE;
  // The slow shapes first, all at once (idle waiting), before the millisecond ones (which
  // would be disturbed by them).
  const slow: SlowRun[] = only === 'fast' || only === 'k32' ? [] : await runSlowCases();
  const slowLoad = loadavg()[0];
  for (const c of only === 'slow' || only === 'k32' ? [] : CASES) {
    const r = c.where === 'external' ? await external(c) : await startup(c);
    rows.push(r);
    console.error(
      `[probe] ${c.where} ${c.shape} K=${c.k} S=${c.s}ms -> ${r.measured ?? 'error'} ` +
        `(${r.stopReason}, ${r.seconds.toFixed(1)} s)${r.note ? ` ${r.note}` : ''}`,
    );
  }
  // K = 32 at S = 20 ms, today's rules against the fixed warm-up, interleaved.
  const k32Case = (where: Case['where']): Case => ({ shape: 'knee', k: 32, s: 20, where });
  const k32Runs: K32Run[] =
    only === 'slow'
      ? []
      : await runK32Rounds(
          async (where, probe) => {
            const r =
              where === 'external'
                ? await external(k32Case(where), probe)
                : await startup(k32Case(where), probe);
            return {
              measured: r.measured,
              stopReason: r.stopReason,
              levels: r.levels,
              requests: r.requests,
              seconds: r.seconds,
            };
          },
          Number(process.env.BENCH_ROUNDS ?? 3),
        );
  const k32Part = k32Runs.length
    ? [
        '',
        '### K = 32 at S = 20 ms, interleaved',
        '',
        `Knee shape, latency limit 100 ms, ${Math.max(...k32Runs.map((r) => r.round))} rounds ` +
          `(the order of the two rules alternates). Load average during the rounds: ` +
          `${Math.min(...k32Runs.map((r) => r.load)).toFixed(2)} – ` +
          `${Math.max(...k32Runs.map((r) => r.load)).toFixed(2)}.`,
        '',
        k32Table(k32Runs),
      ]
    : [];
  const exactKnee = rows.filter((r) => r.shape === 'knee' && r.ok).length;
  const kneeRows = rows.filter((r) => r.shape === 'knee').length;
  const queueOk = rows.filter((r) => r.shape === 'queue' && r.ok).length;
  const queueRows = rows.filter((r) => r.shape === 'queue').length;
  const k32 = rows.filter((r) => r.shape === 'knee' && r.k === 32 && r.s === 20);

  const table = [
    '| probe | shape | true K | S (ms) | measured | error | stop | levels | requests | wall time | target met |',
    '|---|---|---:|---:|---:|---:|---|---:|---:|---:|:-:|',
    ...rows.map(
      (r) =>
        `| ${r.where} | ${r.shape} | ${r.k} | ${r.s} | ${r.measured ?? '—'} | ` +
        `${r.errorPct === null ? '—' : `${r.errorPct >= 0 ? '+' : ''}${r.errorPct.toFixed(0)} %`} | ` +
        `${r.stopReason} | ${r.levels} | ${r.requests} | ${r.seconds.toFixed(1)} s | ${r.ok ? 'yes' : 'NO'} |`,
    ),
  ].join('\n');
  const slowOk = slow.filter(
    (r) =>
      r.rule === 'new' &&
      r.measured !== null &&
      (r.shape === 'knee' ? r.measured === r.k : Math.abs(r.measured - r.k) <= 1) &&
      // The budget, plus aborting the level in flight when it ran out.
      r.seconds <= 121,
  ).length;
  const slowPart = slow.length
    ? [
        '',
        '### Slow endpoints',
        '',
        `Simulated models whose calls take S = 1, 3, 10 s (knee: K = 2, x4 slower above K, 500 at`,
        `6 in flight; queue: K = 4 slots). Today's rules are the defaults; the old rule is`,
        `\`latencyThresholdMs: 2000\` with levels not paced by latency and no time budget (cut at`,
        `${OLD_CAP_MS / 1000} s here). All runs at once, each against its own model process. Load average`,
        `at start: ${load.toFixed(2)}, after: ${slowLoad.toFixed(2)}.`,
        '',
        slowTable(slow),
        '',
        `Today's rules: ${slowOk}/${slow.length / 2} exact (queue within 1) within 120 s.`,
      ]
    : [];
  const markdown = [
    `Default probe settings (warm-up 3 latencies of the level below, 50–300 ms, 1 s per level (a quarter once the mean latency is known to 1 %) and at least 10 mean latencies, min 20 samples,`,
    `capacity = smallest level with >= 95 % of the peak throughput). Knee shape (x${SLOWDOWN} slower`,
    `above K): latency limit 5 x S, target exactly K. Queue shape: default limits, target within 10 % of K.`,
    `External = a bare model server in its own process (as the CLI probes); startup = the in-app`,
    `startup probe (Nest + Express in the same process as the model). Load average at start: ${load.toFixed(2)}.`,
    '',
    table,
    '',
    `Knee exact: ${exactKnee}/${kneeRows}. Queue within 10 %: ${queueOk}/${queueRows}. ` +
      `K = 32 at S = 20 ms: ${k32.map((r) => `${r.where} ${r.seconds.toFixed(1)} s`).join(', ')} ` +
      `(target < ${TIME_TARGET_S} s).`,
    ...k32Part,
    ...slowPart,
  ].join('\n');
  return {
    title: 'Probe accuracy and time',
    markdown,
    data: { loadAverage: load, rows, slow, k32: k32Runs },
  };
}

if (require.main === module) {
  runProbeAccuracyBench()
    .then((s) => {
      console.log(`## ${s.title}\n\n${s.markdown}`);
    })
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
