import { h } from './dom';
import { fmtInt, fmtMs, fmtNum } from './format';
import type { ProbeReport } from './probe-report';

// The words and the level table of a pool card's probe report.

const STOP_REASON: Record<string, string> = {
  limit: 'a level broke the error or latency budget; the largest passing level was kept',
  knee: 'throughput stopped growing (the knee)',
  max_concurrency: 'every level up to probe.maxConcurrency passed',
  budget: 'the request budget (probe.maxRequests) ran out',
  deadline:
    'the time budget (probe.maxDurationMs) ran out: the largest level proven within the limits was kept',
};

export function probeReasonText(r: ProbeReport, chosen: number | null): string {
  const parts: string[] = [];
  if (chosen !== null) parts.push(`Capacity ${chosen}`);
  const share = r.choice?.throughputShare;
  if (share !== null && share !== undefined && r.choice?.peakThroughputRps != null) {
    parts.push(
      `${fmtNum(share * 100)}% of the peak throughput (${fmtNum(r.choice.peakThroughputRps)}/s` +
        `${r.choice.peakConcurrency != null ? ` at ${fmtInt(r.choice.peakConcurrency)}` : ''})`,
    );
  }
  if (r.stopReason) parts.push(`stopped: ${STOP_REASON[r.stopReason] ?? r.stopReason}`);
  if (r.latencyThresholdMs !== null || r.errorThreshold !== null) {
    const budget = [
      r.latencyThresholdMs !== null ? `p99 ≤ ${fmtMs(r.latencyThresholdMs)}` : null,
      r.errorThreshold !== null ? `errors ≤ ${fmtNum(r.errorThreshold * 100)}%` : null,
    ].filter(Boolean);
    parts.push(`budget ${budget.join(', ')}`);
  }
  return parts.join(' · ');
}

export function probeStateText(
  state: string,
  error: string | null,
  level: number | null = null,
  interim: number | null = null,
  interimFrom: string | null = null,
): string {
  const meanwhile =
    interim !== null
      ? ` · real requests at interim cap ${interim} (${interimFrom === 'stored' ? 'last stored result' : 'minimum'})`
      : '';
  switch (state) {
    case 'running':
      return `probing now${level !== null ? `: level ${level}` : '…'}${meanwhile}`;
    case 'waiting':
      return `waiting for another worker’s probe${meanwhile}`;
    case 'pending':
      return `starts once the server listens${meanwhile}`;
    case 'failed':
      return `failed${error ? `: ${error}` : ''}`;
    case 'skipped':
      return `skipped${error ? ` (${error})` : ''}`;
    default:
      return state;
  }
}

export function probeEmptyText(state: string, error: string | null): string {
  if (state === 'running' || state === 'pending' || state === 'waiting') {
    return 'The probe is measuring this endpoint; the level table appears when it finishes.';
  }
  if (state === 'failed') return `The probe failed${error ? `: ${error}` : ''}.`;
  if (state === 'skipped')
    return `Not probed${error ? ` (${error})` : ''}: no level table to show.`;
  return 'No probe report for this endpoint.';
}

export function levelTable(r: ProbeReport, chosen: number | null): HTMLElement {
  const rows = r.levels.map((l) => {
    const verdict =
      l.passed === null
        ? h('span', { class: 'muted' }, '–')
        : l.passed
          ? h('span', { class: 'ok' }, '✓ pass')
          : h('span', { class: 'bad' }, `✗ ${l.failure ?? 'fail'}`);
    return h(
      'tr',
      { class: l.concurrency === chosen ? 'chosen' : undefined },
      h('td', { class: 'num' }, fmtInt(l.concurrency)),
      h('td', { class: 'num' }, fmtInt(l.requests)),
      h('td', { class: 'num' }, l.errorRate === null ? '–' : `${fmtNum(l.errorRate * 100)}%`),
      h('td', { class: 'num' }, fmtMs(l.p50Ms)),
      h('td', { class: 'num' }, fmtMs(l.p99Ms)),
      h('td', { class: 'num' }, l.throughput === null ? '–' : `${fmtNum(l.throughput)}/s`),
      h('td', null, verdict),
    );
  });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'levels', 'data-table': 'probe-levels' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { class: 'num' }, 'Concurrency'),
          h('th', { class: 'num' }, 'Requests'),
          h('th', { class: 'num' }, 'Errors'),
          h('th', { class: 'num' }, 'p50'),
          h('th', { class: 'num' }, 'p99'),
          h('th', { class: 'num' }, 'Throughput'),
          h('th', null, 'Budget'),
        ),
      ),
      h('tbody', null, ...rows),
    ),
  );
}
