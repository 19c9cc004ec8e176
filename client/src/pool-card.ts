import { HistoryChart, ProbeChart } from './charts';
import { h, replace, setText } from './dom';
import { fmtAgo, fmtBytes, fmtInt, fmtMs, fmtPct, fmtSeconds } from './format';
import { DeadlineCounters } from './deadline-counters';
import { OverloadPanel } from './overload-panel';
import { readProbeReport } from './probe-report';
import { levelTable, probeEmptyText, probeReasonText, probeStateText } from './probe-view';
import type { EndpointStats, PoolHistory } from './types';

const SOURCE_LABEL: Record<string, string> = {
  probe: 'probed',
  manual: 'manual',
  default: 'default',
  probing: 'probing…',
  fallback: 'fallback',
  adaptive: 'adaptive',
};

const SOURCE_HINT: Record<string, string> = {
  probe: 'Measured by the probe',
  manual: 'Set in options or @Balanced({ capacity })',
  default: 'Probing is off: defaultCapacity applies',
  probing:
    'The probe is measuring; real requests are admitted at the interim cap meanwhile (the last stored result, else 1), sharing each level with the probe',
  fallback: 'The shared store is unreachable: a local share of the cap applies',
  adaptive: 'Moved by the adaptive controller within its bounds, following the backend',
};

/** green below 80 %, yellow from 80 %, red at 100 % (the cap is reached: new requests queue). */
export function utilizationLevel(u: number): 'ok' | 'warn' | 'full' {
  if (u >= 1) return 'full';
  if (u >= 0.8) return 'warn';
  return 'ok';
}

function metric(
  label: string,
  field: string,
  hint?: string,
): { el: HTMLElement; value: HTMLElement; sub: HTMLElement } {
  const value = h('div', { class: 'metric-value', 'data-field': field }, '–');
  const sub = h('div', { class: 'metric-sub' });
  const el = h(
    'div',
    { class: 'metric', title: hint },
    h('div', { class: 'metric-label' }, label),
    value,
    sub,
  );
  return { el, value, sub };
}

function counter(
  label: string,
  field: string,
  tone: string,
  hint: string,
): { el: HTMLElement; value: HTMLElement } {
  const value = h('span', { class: 'counter-value', 'data-field': field }, '–');
  const el = h(
    'div',
    { class: `counter ${tone}`, title: hint },
    h('span', { class: 'counter-label' }, label),
    value,
  );
  return { el, value };
}

/** One pool: numbers, utilization, counters, the live chart and the probe report. */
export class PoolCard {
  readonly el: HTMLElement;
  private readonly health: HTMLElement;
  private readonly routes: HTMLElement;
  private readonly capacity = metric('Capacity', 'capacity');
  private readonly active = metric('Active', 'active', 'Requests holding a slot now');
  private readonly available = metric('Available', 'available', 'Free slots');
  private readonly queued = metric('Queued', 'queued', 'Requests waiting for a slot (FIFO)');
  private readonly barFill: HTMLElement;
  private readonly barLabel: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly admitted = counter(
    'Admitted',
    'admitted',
    'tone-ok',
    'Requests that got a slot',
  );
  private readonly rejected = counter(
    '503 rejected',
    'rejected',
    'tone-warn',
    'Queue full, shed, tenant queue full, unhealthy or shutting down',
  );
  private readonly shed = counter(
    '503 shed',
    'shed',
    'tone-warn',
    'Of the 503s: shed by queueTargetMs, or over maxQueuePerTenant',
  );
  private readonly timedOut = counter(
    '504 timed out',
    'timed_out',
    'tone-bad',
    'Waited longer than the queue timeout',
  );
  private readonly deadlines = new DeadlineCounters();
  private readonly limits: HTMLElement;
  private readonly overload = new OverloadPanel();
  private readonly chart: HistoryChart;
  private readonly chartEmpty: HTMLElement;
  private readonly probeSummary: HTMLElement;
  private readonly probeBody: HTMLElement;
  private readonly probeChartHost: HTMLElement;
  private probeChart: ProbeChart | null = null;
  private probeKey = '';

  constructor(readonly pool: string) {
    this.health = h('span', { class: 'pill' });
    this.routes = h('div', { class: 'card-routes' });
    this.barFill = h('div', { class: 'bar-fill' });
    this.barLabel = h('span', { class: 'bar-label', 'data-field': 'utilization' }, '–');
    this.bar = h(
      'div',
      { class: 'util' },
      h(
        'div',
        { class: 'util-head' },
        h('span', { class: 'metric-label' }, 'Utilization'),
        this.barLabel,
      ),
      h(
        'div',
        { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' },
        this.barFill,
      ),
    );
    this.limits = h('div', { class: 'limits' });
    const chartHost = h('div', { class: 'chart-host', 'data-chart': 'history' });
    this.chartEmpty = h('div', { class: 'chart-empty' }, 'Collecting samples…');
    this.chart = new HistoryChart(chartHost);
    this.probeSummary = h('span', { class: 'probe-summary' });
    this.probeChartHost = h('div', { class: 'chart-host', 'data-chart': 'probe' });
    this.probeBody = h('div', { class: 'probe-body' });
    const probe = h(
      'details',
      { class: 'probe', 'data-section': 'probe' },
      h('summary', null, h('span', { class: 'section-title' }, 'Probe report'), this.probeSummary),
      this.probeBody,
    );
    // Opened by default once a report exists, unless the operator folded it.
    probe.querySelector('summary')?.addEventListener('click', () => (probe.dataset.touched = '1'));
    probe.addEventListener('toggle', () => {
      if (probe.open) this.probeChart?.rebuild();
    });

    this.el = h(
      'article',
      { class: 'card', 'data-pool': pool },
      h(
        'header',
        { class: 'card-head' },
        h(
          'div',
          { class: 'card-title' },
          h('h2', { class: 'pool-name', title: pool }, pool),
          this.routes,
        ),
        this.health,
      ),
      h(
        'div',
        { class: 'metrics' },
        this.capacity.el,
        this.active.el,
        this.available.el,
        this.queued.el,
      ),
      this.bar,
      h(
        'div',
        { class: 'counters' },
        this.admitted.el,
        this.rejected.el,
        this.shed.el,
        this.timedOut.el,
        ...this.deadlines.els,
      ),
      this.limits,
      this.overload.el,
      h(
        'section',
        { class: 'history' },
        h(
          'div',
          { class: 'section-head' },
          h('span', { class: 'section-title' }, 'Active and queued'),
        ),
        h('div', { class: 'chart-wrap' }, chartHost, this.chartEmpty),
      ),
      probe,
    );
  }

  update(e: EndpointStats, history: PoolHistory | undefined, now: number, rangeS: number): void {
    setText(this.routes, e.routes.join(' · ') || 'no routes');
    this.health.className = `pill ${e.healthy ? 'pill-ok' : 'pill-bad'}`;
    setText(this.health, e.healthy ? 'Healthy' : 'Unhealthy');
    this.health.setAttribute('data-field', 'health');

    setText(this.capacity.value, e.capacity === null ? '…' : fmtInt(e.capacity));
    const source = e.capacity_source;
    this.capacity.sub.className = `metric-sub source source-${source}`;
    const interim = source === 'probing' ? (e.probe.interim_capacity ?? null) : null;
    const stored = e.probe.interim_from === 'stored';
    // The value above is the interim cap; the line says it is one (short: the metric is narrow).
    setText(
      this.capacity.sub,
      interim !== null
        ? `interim (${stored ? 'stored' : 'minimum'})`
        : (SOURCE_LABEL[source] ?? source),
    );
    this.capacity.el.title =
      interim !== null
        ? `Probing: real requests are admitted at ${interim} meanwhile (${
            stored ? 'the last stored probe result' : 'nothing measured yet: 1'
          }), sharing each level with the probe`
        : (SOURCE_HINT[source] ?? '');
    this.capacity.sub.setAttribute('data-field', 'source');

    setText(this.active.value, fmtInt(e.active_requests));
    setText(this.available.value, fmtInt(e.available_slots));
    setText(this.queued.value, fmtInt(e.queued));
    setText(this.queued.sub, e.max_queue ? `of ${fmtInt(e.max_queue)} max` : 'no queue');
    setText(this.active.sub, e.capacity ? `of ${fmtInt(e.capacity)}` : '');
    setText(this.available.sub, '');
    // A costed pool's capacity counts units: the subs say how many are held and waiting.
    const units = e.units;
    if (units) {
      setText(this.active.sub, `${fmtInt(units.active)} units of ${fmtInt(e.capacity ?? 0)}`);
      setText(this.available.sub, 'units');
      setText(this.queued.sub, `${fmtInt(units.queued)} units waiting`);
    }

    const u = e.capacity ? (units?.active ?? e.active_requests) / e.capacity : 0;
    const level = e.capacity === null ? 'unknown' : utilizationLevel(u);
    this.bar.className = `util util-${level}`;
    this.barFill.style.width = `${Math.min(100, Math.max(0, u * 100)).toFixed(1)}%`;
    setText(this.barLabel, e.capacity === null ? 'capacity unknown' : fmtPct(u));
    this.bar.querySelector('.bar')?.setAttribute('aria-valuenow', String(Math.round(u * 100)));

    setText(this.admitted.value, fmtInt(e.admitted));
    setText(this.rejected.value, fmtInt(e.rejected));
    setText(this.timedOut.value, fmtInt(e.timed_out));
    setText(this.shed.value, fmtInt(e.shed));
    this.rejected.el.classList.toggle('nonzero', e.rejected > 0);
    this.shed.el.classList.toggle('nonzero', (e.shed ?? 0) > 0);
    this.timedOut.el.classList.toggle('nonzero', e.timed_out > 0);
    this.deadlines.update(e);
    setText(
      this.limits,
      `queue timeout ${fmtSeconds(e.queue_timeout)} · max queue ${fmtInt(e.max_queue)}` +
        (e.max_queue_bytes
          ? ` · queued bodies ${fmtBytes(e.queued_bytes ?? 0)} of ${fmtBytes(e.max_queue_bytes)}`
          : '') +
        (e.workers && e.workers > 1 ? ` · ${fmtInt(e.workers)} workers` : ''),
    );

    const samples = history?.t.length ?? 0;
    this.chartEmpty.hidden = samples > 1;
    this.chart.update(history, now, rangeS);

    this.overload.update(e);
    this.updateProbe(e);
  }

  /** Re-draw charts (theme change). */
  redraw(): void {
    this.chart.rebuild();
    this.probeChart?.rebuild();
  }

  destroy(): void {
    this.chart.destroy();
    this.probeChart?.destroy();
    this.el.remove();
  }

  private updateProbe(e: EndpointStats): void {
    const p = e.probe;
    const report = readProbeReport(p.report);
    const chosen = p.max_concurrency ?? report?.maxConcurrency ?? null;
    const state = p.state;
    const probing = state === 'running' || state === 'waiting' || state === 'pending';
    const summary = probing
      ? probeStateText(
          state,
          p.error,
          p.level ?? null,
          p.interim_capacity ?? null,
          p.interim_from ?? null,
        )
      : p.measured_at !== null
        ? `${chosen !== null ? `capacity ${chosen}` : 'measured'} · ${fmtAgo(p.measured_at)}${
            p.duration_ms !== null ? ` · took ${fmtMs(p.duration_ms)}` : ''
          }`
        : probeStateText(state, p.error);
    setText(this.probeSummary, summary);
    this.probeSummary.className = `probe-summary probe-${state}`;

    const key = JSON.stringify([p.report, chosen, state, p.error]);
    if (key === this.probeKey) return;
    this.probeKey = key;
    const details = this.el.querySelector('details.probe') as HTMLDetailsElement;
    if (!report) {
      this.probeChart?.destroy();
      this.probeChart = null;
      replace(this.probeBody, h('div', { class: 'probe-empty' }, probeEmptyText(state, p.error)));
      return;
    }
    if (!this.probeChart) this.probeChart = new ProbeChart(this.probeChartHost);
    replace(
      this.probeBody,
      h('div', { class: 'probe-reason' }, probeReasonText(report, chosen)),
      ...report.warnings.map((w) => h('div', { class: 'probe-warning' }, `⚠ ${w}`)),
      h(
        'div',
        { class: 'probe-grid' },
        h('div', { class: 'chart-wrap' }, this.probeChartHost),
        levelTable(report, chosen),
      ),
    );
    if (!details.dataset.touched) details.open = true;
    this.probeChart.update(report, chosen);
  }
}
