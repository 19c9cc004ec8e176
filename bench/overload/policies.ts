import { fmtMs, markdownTable } from '../lib/table';
import { HEAVY_TO_LIGHT } from './phases';
import { byName, otherFailures, phase } from './results';
import { TENANT_HEADER } from './scenarios';
import {
  capacityRate,
  queueTarget,
  type OverloadConfig,
  type PhaseResult,
  type ScenarioName,
  type ScenarioResult,
  type TargetCheck,
  type TenantGroupResult,
} from './types';

/**
 * Issue 11's overload policies in the overload report: `queueTargetMs` side by side with
 * today's FIFO and HAProxy under the open loop, and the tenants load (a light client next to a
 * heavy one) with and without `tenantHeader`.
 */

/** Issue 11's goals for `queueTargetMs` at 3 x K/S open loop with target T = 2 x S. */
export function targetGoals(cfg: OverloadConfig): {
  goodputRatio: number;
  servedP50Ms: number;
  rejectedP50Ms: number;
} {
  return { goodputRatio: 0.9, servedP50Ms: cfg.s + 2 * queueTarget(cfg), rejectedP50Ms: 50 };
}

/**
 * Our bound for the light tenant's p50 with round-robin tenants: its own service time S, a wait
 * of at most about two grants (2 x S/K: it queues in the round after the one being served, next
 * to at most one heavy waiter of the same round), and the rest of a second S as slack for the
 * loopback hops on a loaded machine.
 */
export function lightBoundMs(cfg: OverloadConfig): number {
  return 2 * cfg.s;
}

const QUEUE_ROWS: ScenarioName[] = [
  'memory',
  'manual',
  'target',
  'redis',
  'redis-target',
  'haproxy',
];

/** The FIFO scenario a target scenario is compared with. */
function fifoOf(
  results: ScenarioResult[],
  n: 'target' | 'redis-target',
): ScenarioResult | undefined {
  return n === 'target'
    ? (byName(results, 'memory') ?? byName(results, 'manual'))
    : byName(results, 'redis');
}

function statusP50(p: PhaseResult, status: string): string {
  return fmtMs(p.latencyByStatus[status]?.p50Ms, 0);
}

function queueTable(results: ScenarioResult[], cfg: OverloadConfig): string[] {
  const ks = capacityRate(cfg);
  const goals = targetGoals(cfg);
  const rows = QUEUE_ROWS.flatMap((n) => {
    const r = byName(results, n);
    const p = phase(r, 'open');
    if (!r || !p) return [];
    return [
      [
        r.title,
        r.policies?.queueTargetMs ?? '-',
        (p.goodput / ks).toFixed(2),
        fmtMs(p.latency.p50Ms, 0),
        fmtMs(p.latency.p99Ms, 0),
        p.byStatus['503'] ?? 0,
        p.byStatus['504'] ?? 0,
        otherFailures(p),
        fmtMs(p.rejectedLatency.p50Ms, 0),
        fmtMs(p.rejectedLatency.p99Ms, 0),
        statusP50(p, '503'),
        statusP50(p, '504'),
      ],
    ];
  });
  if (!rows.some((row) => row[1] !== '-')) return [];
  return [
    '',
    `Bounded queue delay (issue 11), open loop ${(cfg.rate * ks).toFixed(0)} req/s = ${cfg.rate} x K/S: ` +
      `queueTargetMs T = ${queueTarget(cfg)} ms against today's FIFO and HAProxy. Goals for the target rows: ` +
      `x K/S >= ${goals.goodputRatio}, served p50 <= S + 2 x T = ${goals.servedP50Ms} ms, ` +
      `rejected p50 <= ${goals.rejectedP50Ms} ms. A 503 of a target row is mostly a shed request ` +
      `(answered at once); a 504 waited the full queue timeout.`,
    '',
    markdownTable(
      [
        'scenario',
        'queueTargetMs',
        'x K/S',
        'served p50 ms',
        'served p99 ms',
        '503',
        '504',
        'other errors',
        'rejected p50 ms',
        'rejected p99 ms',
        '503 p50 ms',
        '504 p50 ms',
      ],
      rows,
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r'],
    ),
  ];
}

function tenantRows(r: ScenarioResult, p: PhaseResult): Array<Array<string | number>> {
  const row = (g: TenantGroupResult): Array<string | number> => [
    r.title,
    g.tenant,
    g.rate.toFixed(0),
    g.goodput.toFixed(1),
    fmtMs(g.latency.p50Ms, 0),
    fmtMs(g.latency.p99Ms, 0),
    g.byStatus['503'] ?? 0,
    g.byStatus['504'] ?? 0,
    fmtMs(g.rejectedLatency.p50Ms, 0),
    g.lost,
  ];
  return p.groups ? [row(p.groups.light), row(p.groups.heavy)] : [];
}

function tenantsTable(results: ScenarioResult[], cfg: OverloadConfig): string[] {
  const runs = results.filter((r) => !r.skipped && phase(r, 'tenants')?.groups);
  if (!runs.length) return [];
  const lines = [
    '',
    `Tenants: the open-loop rate (${(cfg.rate * capacityRate(cfg)).toFixed(0)} req/s) split ${HEAVY_TO_LIGHT}:1 ` +
      `between a heavy and a light client, each sending its key in \`${TENANT_HEADER}\`. The FIFO row ` +
      `ignores the header; with \`tenantHeader\` queued requests are served round-robin across tenants.`,
    '',
    markdownTable(
      [
        'scenario',
        'tenant',
        'offered req/s',
        'goodput 2xx/s',
        'served p50 ms',
        'served p99 ms',
        '503',
        '504',
        'rejected p50 ms',
        'lost',
      ],
      runs.flatMap((r) => tenantRows(r, phase(r, 'tenants')!)),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  ];
  const fair = phase(byName(results, 'tenant'), 'tenants')?.groups?.light.latency.p50Ms;
  const fifo = phase(byName(results, 'memory'), 'tenants')?.groups?.light.latency.p50Ms;
  if (fair && fifo) {
    lines.push(
      '',
      `Light tenant's p50: ${fair.toFixed(0)} ms with tenantHeader vs ${fifo.toFixed(0)} ms FIFO ` +
        `(${(fifo / fair).toFixed(1)} x lower).`,
    );
  }
  return lines;
}

export function policyTables(results: ScenarioResult[], cfg: OverloadConfig): string[] {
  return [...queueTable(results, cfg), ...tenantsTable(results, cfg)];
}

export function policyChecks(results: ScenarioResult[], cfg: OverloadConfig): TargetCheck[] {
  const ks = capacityRate(cfg);
  const goals = targetGoals(cfg);
  const checks: TargetCheck[] = [];
  for (const n of ['target', 'redis-target'] as const) {
    const p = phase(byName(results, n), 'open');
    if (!p) continue;
    const fifo = phase(fifoOf(results, n), 'open');
    const e500 = p.byStatus['500'] ?? 0;
    const vs = (v: number | null | undefined): string => (fifo ? ` (FIFO ${fmtMs(v, 0)} ms)` : '');
    checks.push({
      target: `${n}/open: goodput >= ${goals.goodputRatio} x K/S, zero 500s`,
      pass: p.goodput >= goals.goodputRatio * ks && e500 === 0,
      detail:
        `${p.goodput.toFixed(1)} 2xx/s = ${(p.goodput / ks).toFixed(2)} x K/S, ${e500} x 500` +
        (fifo ? ` (FIFO ${(fifo.goodput / ks).toFixed(2)})` : ''),
    });
    checks.push({
      target: `${n}/open: served p50 <= S + 2 x target = ${goals.servedP50Ms} ms`,
      pass: (p.latency.p50Ms ?? Infinity) <= goals.servedP50Ms,
      detail: `${fmtMs(p.latency.p50Ms, 0)} ms${vs(fifo?.latency.p50Ms)}`,
    });
    checks.push({
      target: `${n}/open: rejected p50 <= ${goals.rejectedP50Ms} ms`,
      pass:
        p.rejectedLatency.count > 0 && (p.rejectedLatency.p50Ms ?? Infinity) <= goals.rejectedP50Ms,
      detail:
        `${fmtMs(p.rejectedLatency.p50Ms, 0)} ms over ${p.rejectedLatency.count} rejections ` +
        `(503: ${p.byStatus['503'] ?? 0}, 504: ${p.byStatus['504'] ?? 0})${vs(fifo?.rejectedLatency.p50Ms)}`,
    });
  }
  const fair = phase(byName(results, 'tenant'), 'tenants')?.groups;
  const fifoPhase = phase(byName(results, 'memory'), 'tenants');
  if (fair) {
    const light = fair.light.latency.p50Ms;
    checks.push({
      target: `tenant/tenants: light tenant's p50 <= 2 x S = ${lightBoundMs(cfg)} ms`,
      pass: (light ?? Infinity) <= lightBoundMs(cfg),
      detail: `${fmtMs(light, 0)} ms (heavy ${fmtMs(fair.heavy.latency.p50Ms, 0)} ms)`,
    });
    if (fifoPhase?.groups) {
      const fifoLight = fifoPhase.groups.light.latency.p50Ms;
      const fairTotal = fair.heavy.goodput + fair.light.goodput;
      checks.push({
        target: `tenant/tenants: light tenant's p50 at most half of FIFO's`,
        pass: light !== null && fifoLight !== null && light <= fifoLight / 2,
        detail: `${fmtMs(light, 0)} vs ${fmtMs(fifoLight, 0)} ms`,
      });
      checks.push({
        target: `tenant/tenants: goodput (heavy + light) within 3 % of FIFO's`,
        pass: fairTotal >= fifoPhase.goodput * 0.97,
        detail: `${fairTotal.toFixed(1)} vs ${fifoPhase.goodput.toFixed(1)} 2xx/s`,
      });
    }
  }
  return checks;
}

/** The policy figures of a run, for the JSON file (the lead's table reads these). */
export function policySummary(results: ScenarioResult[], cfg: OverloadConfig): unknown {
  const ks = capacityRate(cfg);
  const open = QUEUE_ROWS.flatMap((n) => {
    const r = byName(results, n);
    const p = phase(r, 'open');
    if (!r || !p) return [];
    return [
      {
        scenario: n,
        title: r.title,
        queueTargetMs: r.policies?.queueTargetMs ?? null,
        goodputRatio: p.goodput / ks,
        servedP50Ms: p.latency.p50Ms,
        servedP99Ms: p.latency.p99Ms,
        rejectedByStatus: { '503': p.byStatus['503'] ?? 0, '504': p.byStatus['504'] ?? 0 },
        rejectedP50Ms: p.rejectedLatency.p50Ms,
        rejectedP99Ms: p.rejectedLatency.p99Ms,
        rejectedP50MsByStatus: {
          '503': p.latencyByStatus['503']?.p50Ms ?? null,
          '504': p.latencyByStatus['504']?.p50Ms ?? null,
        },
      },
    ];
  });
  const tenants = results.flatMap((r) => {
    const g = r.skipped ? undefined : phase(r, 'tenants')?.groups;
    if (!g) return [];
    const one = (x: TenantGroupResult): unknown => ({
      rate: x.rate,
      goodput: x.goodput,
      servedP50Ms: x.latency.p50Ms,
      servedP99Ms: x.latency.p99Ms,
      rejectedByStatus: { '503': x.byStatus['503'] ?? 0, '504': x.byStatus['504'] ?? 0 },
      rejectedP50Ms: x.rejectedLatency.p50Ms,
    });
    return [
      {
        scenario: r.name,
        title: r.title,
        tenantHeader: r.policies?.tenantHeader ?? null,
        light: one(g.light),
        heavy: one(g.heavy),
      },
    ];
  });
  return {
    queueTargetMs: queueTarget(cfg),
    goals: { ...targetGoals(cfg), lightTenantP50Ms: lightBoundMs(cfg) },
    open,
    tenants,
  };
}
