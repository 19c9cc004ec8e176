/**
 * Slow endpoints (issue 19): the probe against simulated model servers whose calls take
 * seconds, with today's rules (the defaults: a latency limit relative to the endpoint's own
 * unloaded latency, levels paced by latency, a 120 s time budget) and the rules before them
 * (reachable by setting the old options explicitly: `latencyThresholdMs: 2000`, no pacing,
 * no time budget, cut here at OLD_CAP_MS so the bench ends), side by side in one run.
 *
 * - knee: K = 2 calls at full speed, every call x4 slower (growing with in flight / K) above,
 *   500 at 3 K = 6 in flight (out of memory).
 * - queue: K = 4 slots, the rest wait in line; nothing fails.
 *
 * Every run probes its own model process from outside (as the CLI does). The runs are mostly
 * idle waiting, so they run all at once: the wall time of the section is that of the slowest.
 */
import { performance } from 'node:perf_hooks';
import { ProbeService, type ProbeResult, type ProbeRunOptions } from '../src';
import { PREDICT_BODY } from '../test/fixtures/model-app';
import { startFixture, stopFixture } from './lib/procs';

export interface SlowCase {
  shape: 'knee' | 'queue';
  k: number;
  s: number;
}

export type Rule = 'new' | 'old';

export interface SlowRun extends SlowCase {
  rule: Rule;
  measured: number | null;
  stopReason: string;
  seconds: number;
  calls: number;
  failedCalls: number;
  note: string;
}

export const SLOW_CASES: SlowCase[] = [1000, 3000, 10_000].flatMap((s) => [
  { shape: 'knee' as const, k: 2, s },
  { shape: 'queue' as const, k: 4, s },
]);

/** The old rules had no time budget: a run of them is cut here (reported as such). */
export const OLD_CAP_MS = 420_000;

const RULES: Record<Rule, ProbeRunOptions> = {
  new: {},
  old: { latencyThresholdMs: 2000, slowLatencyMs: 1e9, maxDurationMs: OLD_CAP_MS },
};

async function runOne(c: SlowCase, rule: Rule): Promise<SlowRun> {
  const fixture = await startFixture(`slow-${c.shape}-${c.s}-${rule}`, 'model-server.ts', [], {
    env: { MODEL_K: String(c.k), MODEL_S: String(c.s), MODEL_SHAPE: c.shape },
  });
  const base = `http://127.0.0.1:${fixture.port}`;
  const t = performance.now();
  let result: ProbeResult | undefined;
  let note = '';
  try {
    result = await new ProbeService().probe(
      { url: `${base}/predict`, method: 'POST', body: PREDICT_BODY },
      RULES[rule],
    );
  } catch (err) {
    note = (err as Error)?.message ?? String(err);
  }
  const seconds = (performance.now() - t) / 1000;
  try {
    const model = (await (await fetch(`${base}/stats`)).json()) as {
      current: number;
      served: number;
      failed: number;
    };
    return {
      ...c,
      rule,
      measured: result?.maxConcurrency ?? null,
      stopReason: result?.stopReason ?? 'error',
      seconds,
      calls: model.served + model.failed + model.current,
      failedCalls: model.failed,
      note:
        rule === 'old' && result?.stopReason === 'deadline'
          ? `cut at ${OLD_CAP_MS / 1000} s`
          : shorten(note),
    };
  } finally {
    await stopFixture(fixture);
  }
}

function shorten(note: string): string {
  const m = /fails at concurrency 1: ([^;(]*)/.exec(note);
  if (m) return `level 1 failed: ${m[1].trim()}`;
  const t = /no answer within (\d+) ms/.exec(note);
  if (t) return `first request: no answer within the ${Number(t[1]) / 1000} s request timeout`;
  return note.length > 90 ? `${note.slice(0, 87)}...` : note;
}

export async function runSlowCases(): Promise<SlowRun[]> {
  const runs = await Promise.all(
    SLOW_CASES.flatMap((c) => (['new', 'old'] as const).map((rule) => runOne(c, rule))),
  );
  for (const r of runs) {
    console.error(
      `[probe] slow ${r.shape} K=${r.k} S=${r.s}ms ${r.rule} rule -> ${r.measured ?? 'error'} ` +
        `(${r.stopReason}, ${r.seconds.toFixed(1)} s, ${r.calls} calls)${r.note ? ` ${r.note}` : ''}`,
    );
  }
  return runs;
}

export function slowTable(runs: SlowRun[]): string {
  const cell = (r: SlowRun | undefined): string =>
    r
      ? `${r.measured ?? '—'} | ${r.stopReason} | ${r.seconds.toFixed(0)} s | ${r.calls}` +
        `${r.failedCalls ? ` (${r.failedCalls} failed)` : ''}`
      : '— | — | — | —';
  const lines = [
    '| shape | S | true K | probed K | stop | wall time | model calls | old rule: K | stop | wall time | model calls | old rule note |',
    '|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---|',
  ];
  for (const c of SLOW_CASES) {
    const at = (rule: Rule): SlowRun | undefined =>
      runs.find((r) => r.shape === c.shape && r.s === c.s && r.rule === rule);
    const old = at('old');
    lines.push(
      `| ${c.shape} | ${c.s / 1000} s | ${c.k} | ${cell(at('new'))} | ${cell(old)} | ${old?.note ?? ''} |`,
    );
  }
  return lines.join('\n');
}
