import { cpus } from 'node:os';
import { fmtMs, markdownTable } from '../lib/table';
import { lowClientsPerTarget } from './phases';
import { policyChecks, policyTables } from './policies';
import { byName, otherFailures, phase, signed } from './results';
import {
  capacityRate,
  queueTarget,
  type LoadName,
  type OverloadConfig,
  type ScenarioName,
  type ScenarioResult,
  type TargetCheck,
} from './types';

/** The markdown report of `npm run bench:overload` and its PASS/MISS targets. */

export function checkTargets(results: ScenarioResult[], cfg: OverloadConfig): TargetCheck[] {
  const ks = capacityRate(cfg);
  const by = (n: ScenarioName): ScenarioResult | undefined => byName(results, n);
  const checks: TargetCheck[] = [];
  for (const load of ['closed', 'open'] as const) {
    for (const ours of ['memory', 'manual', 'redis'] as const) {
      const p = phase(by(ours), load);
      if (!p) continue;
      const e500 = p.byStatus['500'] ?? 0;
      checks.push({
        target: `${ours}/${load}: goodput >= 0.9 x K/S, zero 500s`,
        pass: p.goodput >= 0.9 * ks && e500 === 0,
        detail: `${p.goodput.toFixed(1)} 2xx/s = ${(p.goodput / ks).toFixed(2)} x K/S, ${e500} x 500`,
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
        pass: plain.goodput < 0.5 * ks,
        detail: `${plain.goodput.toFixed(1)} 2xx/s = ${(plain.goodput / ks).toFixed(2)} x K/S`,
      });
    }
  }
  checks.push(...policyChecks(results, cfg));
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
  for (const ours of ['memory', 'redis', 'target', 'redis-target'] as const) {
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
  const ks = capacityRate(cfg);
  const by = (n: ScenarioName): ScenarioResult | undefined => byName(results, n);
  const base = phase(by('plain'), 'low')?.latency.p50Ms;
  const ratio = (n: ScenarioName, load: LoadName): string => {
    const p = phase(by(n), load);
    return p ? (p.goodput / ks).toFixed(3) : '-';
  };
  const added = (n: ScenarioName): string => {
    const p = phase(by(n), 'low')?.latency.p50Ms;
    return p !== undefined && p !== null && base ? signed(p - base) : '-';
  };
  const loads = results.flatMap((r) => r.rounds.map((p) => p.boxLoad ?? 0));
  const rows = (['memory', 'redis', 'target', 'redis-target', 'haproxy'] as const)
    .filter((n) => by(n) && (phase(by(n), 'closed') || phase(by(n), 'open')))
    .map((n) => [by(n)!.title, ratio(n, 'closed'), ratio(n, 'open'), added(n)]);
  if (!rows.length) return '';
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

const MAIN_HEADER = [
  'scenario',
  'capacity',
  'load',
  'goodput 2xx/s',
  'x K/S',
  'served p50 ms',
  'served p99 ms',
  '503',
  '504',
  'other errors',
  'rejected p50 ms',
  'rejected p99 ms',
  'lost',
  'model peak in flight',
  'box CPU %',
  'box load 1 min (rounds)',
];

function mainRows(results: ScenarioResult[], cfg: OverloadConfig): Array<Array<string | number>> {
  const ks = capacityRate(cfg);
  const rows: Array<Array<string | number>> = [];
  for (const r of results) {
    if (r.skipped) {
      const row: Array<string | number> = MAIN_HEADER.map(() => '');
      row[0] = r.title;
      row[1] = '-';
      row[2] = `skipped: ${r.skipped.split('\n')[0]}`;
      rows.push(row);
      continue;
    }
    const cap = r.capacity ? `${r.capacity.value ?? '?'} (${r.capacity.source})` : '-';
    for (const p of r.phases.filter((x) => x.load === 'closed' || x.load === 'open')) {
      rows.push([
        r.title,
        cap,
        `${p.load} ${p.offered}`,
        p.goodput.toFixed(1),
        (p.goodput / ks).toFixed(2),
        fmtMs(p.latency.p50Ms, 0),
        fmtMs(p.latency.p99Ms, 0),
        p.byStatus['503'] ?? 0,
        p.byStatus['504'] ?? 0,
        otherFailures(p),
        fmtMs(p.rejectedLatency.p50Ms, 0),
        fmtMs(p.rejectedLatency.p99Ms, 0),
        p.lost,
        p.model ? p.model.peak : '-',
        p.cpu.machine === null ? '-' : p.cpu.machine.toFixed(0),
        boxLoad(r, p.load),
      ]);
    }
  }
  return rows;
}

function lowTable(results: ScenarioResult[], cfg: OverloadConfig): string[] {
  const low = results.filter((r) => !r.skipped && phase(r, 'low'));
  if (!low.length) return [];
  const base = phase(byName(results, 'plain'), 'low');
  return [
    '',
    `Low load: ${lowClientsPerTarget(cfg)} clients per scenario (K/4), requests interleaved across the scenarios, ` +
      `${cfg.lowDurationS} s. Latency includes the model's S; "added" is the difference to the plain app.`,
    '',
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
  ];
}

export function render(
  results: ScenarioResult[],
  checks: TargetCheck[],
  cfg: OverloadConfig,
): string {
  const ks = capacityRate(cfg);
  const lines: string[] = [];
  lines.push(
    `Model: K=${cfg.k} slots, S=${cfg.s} ms, knee shape (slower above K, 500 at 3 x K in flight); ` +
      `capacity K/S = ${ks.toFixed(0)} req/s. Queue timeout ${cfg.queueTimeoutS} s (ours and HAProxy's \`timeout queue\`); ` +
      `queueTargetMs ${queueTarget(cfg)} ms in the target scenarios. ` +
      `Closed loop: ${cfg.clients * cfg.k} clients; open loop: ${(cfg.rate * ks).toFixed(0)} req/s ${cfg.arrivals}; ` +
      `${cfg.durationS} s measured after ${cfg.warmupS} s warm-up` +
      `${cfg.rounds > 1 ? `, median of ${cfg.rounds} interleaved rounds` : ''}. ` +
      `${cpus().length} CPUs, Node ${process.version}. "served" latencies are of 2xx answers, "rejected" of 503 and 504 ` +
      `answers; "box CPU" is the whole machine during the phase (${cpus().length * 100} % = saturated).`,
  );
  const rows = mainRows(results, cfg);
  if (rows.length) {
    lines.push('');
    lines.push(
      markdownTable(MAIN_HEADER, rows, [
        'l',
        'l',
        'l',
        'r',
        'r',
        'r',
        'r',
        'r',
        'r',
        'l',
        'r',
        'r',
        'r',
        'r',
        'r',
        'l',
      ]),
    );
  }
  const sum = summary(results, cfg);
  if (sum) lines.push('', sum);
  lines.push(...policyTables(results, cfg));
  lines.push(...lowTable(results, cfg));
  lines.push('');
  lines.push('Targets:');
  for (const c of checks) lines.push(`- ${c.pass ? 'PASS' : 'MISS'} ${c.target}: ${c.detail}`);
  return lines.join('\n');
}
