import uPlot from 'uplot';
import { cssVar } from './dom';
import { fmtMs, fmtNum } from './format';
import type { ProbeReport } from './probe-report';
import type { PoolHistory } from './types';

interface Palette {
  text: string;
  muted: string;
  grid: string;
  active: string;
  activeFill: string;
  queued: string;
  queuedFill: string;
  capacity: string;
  p99: string;
  throughput: string;
  mark: string;
  warn: string;
  font: string;
}

function palette(): Palette {
  const family = cssVar('--font-sans') || 'system-ui, sans-serif';
  return {
    text: cssVar('--text'),
    muted: cssVar('--muted'),
    grid: cssVar('--grid'),
    active: cssVar('--series-active'),
    activeFill: cssVar('--series-active-fill'),
    queued: cssVar('--series-queued'),
    queuedFill: cssVar('--series-queued-fill'),
    capacity: cssVar('--series-capacity'),
    p99: cssVar('--series-p99'),
    throughput: cssVar('--series-throughput'),
    mark: cssVar('--green'),
    warn: cssVar('--red'),
    font: `11px ${family}`,
  };
}

const TICK = 4;
/** uPlot's default gap between a tick and its label. */
const GAP = 5;

function axis(p: Palette, extra: uPlot.Axis = {}): uPlot.Axis {
  return {
    stroke: p.muted,
    font: p.font,
    labelFont: p.font,
    grid: { stroke: p.grid, width: 1 },
    ticks: { stroke: p.grid, width: 1, size: TICK },
    gap: GAP,
    ...extra,
  };
}

let measurer: CanvasRenderingContext2D | null | undefined;

/** Width in CSS pixels of `text` drawn in `font` (the axes' canvas font). */
export function textWidth(font: string, text: string): number {
  if (measurer === undefined) measurer = document.createElement('canvas').getContext('2d');
  if (!measurer) return text.length * 7;
  measurer.font = font;
  return measurer.measureText(text).width;
}

/**
 * The size of a vertical axis that holds its widest label ("1,500 ms", "2,300/s"): uPlot's
 * fixed sizes clip long labels at the canvas edge. uPlot calls this again after the plot
 * resized (`cycle` > 1); answering the previous size then lets the layout settle.
 */
function fitLabels(font: string, min = 0): uPlot.Axis.Size {
  let last = min;
  return (_u, values, _axis, cycle) => {
    if (cycle > 1) return last;
    const widest = Math.max(0, ...(values ?? []).map((v) => textWidth(font, v ?? '')));
    last = Math.max(min, Math.ceil(TICK + GAP + widest + 3));
    return last;
  };
}

/** Resize a chart with its container. */
function autoSize(host: HTMLElement, get: () => uPlot | null, height: number): ResizeObserver {
  const ro = new ResizeObserver(() => {
    const u = get();
    const width = Math.floor(host.clientWidth);
    if (u && width > 0 && width !== u.width) u.setSize({ width, height });
  });
  ro.observe(host);
  return ro;
}

const HISTORY_HEIGHT = 170;

const clockFmt = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const clock = (unixSeconds: number): string => clockFmt.format(unixSeconds * 1000);

/** Active, queued and capacity of one pool over the last `range` seconds. */
export class HistoryChart {
  private u: uPlot | null = null;
  private readonly ro: ResizeObserver;
  private data: uPlot.AlignedData = [[], [], [], []];
  /** Queued counts as sampled (the plotted series is stacked on active). */
  private queued: number[] = [];
  private window: [number, number] = [0, 1];

  constructor(private readonly host: HTMLElement) {
    this.ro = autoSize(host, () => this.u, HISTORY_HEIGHT);
  }

  update(h: PoolHistory | undefined, now: number, rangeS: number): void {
    const t = h?.t ?? [];
    const from = now - rangeS;
    let i = 0;
    while (i < t.length && t[i] < from) i++;
    const active = (h?.active ?? []).slice(i);
    this.queued = (h?.queued ?? []).slice(i);
    // Queued is stacked on active: the top edge is the demand, the capacity line shows the cut.
    const demand = active.map((a, k) => a + (this.queued[k] ?? 0));
    this.data = [t.slice(i), demand, active, (h?.capacity ?? []).slice(i)] as uPlot.AlignedData;
    this.window = [from, now];
    if (!this.u) this.build();
    else {
      this.u.batch(() => {
        this.u!.setData(this.data, false);
        this.u!.setScale('x', { min: from, max: now });
      });
    }
  }

  /** Rebuild with the current theme's colours. */
  rebuild(): void {
    this.u?.destroy();
    this.u = null;
    this.build();
  }

  destroy(): void {
    this.ro.disconnect();
    this.u?.destroy();
  }

  private build(): void {
    const width = Math.floor(this.host.clientWidth);
    if (width <= 0) return;
    const p = palette();
    const [from, to] = this.window;
    // Time labels are centred on their tick: the first and last need half a label of room.
    const halfClock = Math.ceil(textWidth(p.font, clock(to)) / 2) + 2;
    const opts: uPlot.Options = {
      width,
      height: HISTORY_HEIGHT,
      padding: [10, halfClock, 0, 0],
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
      legend: { show: true, live: true },
      scales: {
        x: { time: true, min: from, max: to, auto: false },
        y: { range: (_u, _min, max) => [0, Math.max(2, Math.ceil((max || 0) * 1.15))] },
      },
      axes: [
        axis(p, { space: 70, size: 34, values: (_u, ticks) => ticks.map((v) => clock(v)) }),
        axis(p, {
          size: fitLabels(p.font, halfClock),
          space: 28,
          values: (_u, ticks) => ticks.map((v) => (Number.isInteger(v) ? fmtNum(v) : '')),
        }),
      ],
      series: [
        { label: 'Time', value: (_u, v) => (v === null ? '–' : clock(v)) },
        {
          label: 'Queued',
          stroke: p.queued,
          fill: p.queuedFill,
          width: 2,
          paths: uPlot.paths.stepped!({ align: 1 }),
          points: { show: false },
          value: (_u, _v, _s, idx) => (idx === null ? '–' : fmtNum(this.queued[idx])),
        },
        {
          label: 'Active',
          stroke: p.active,
          fill: p.activeFill,
          width: 2,
          paths: uPlot.paths.stepped!({ align: 1 }),
          points: { show: false },
          value: (_u, v) => fmtNum(v),
        },
        {
          label: 'Capacity',
          stroke: p.capacity,
          dash: [6, 4],
          width: 1.5,
          paths: uPlot.paths.stepped!({ align: 1 }),
          points: { show: false },
          value: (_u, v) => fmtNum(v),
        },
      ],
    };
    this.u = new uPlot(opts, this.data, this.host);
  }
}

const PROBE_HEIGHT = 200;

/** p99 latency and throughput against concurrency, with the chosen capacity marked. */
export class ProbeChart {
  private u: uPlot | null = null;
  private readonly ro: ResizeObserver;
  private report: ProbeReport | null = null;
  private chosen: number | null = null;
  private key = '';

  constructor(private readonly host: HTMLElement) {
    this.ro = autoSize(host, () => this.u, PROBE_HEIGHT);
  }

  update(report: ProbeReport, chosen: number | null): void {
    const key = JSON.stringify([report, chosen]);
    if (key === this.key && this.u) return;
    this.key = key;
    this.report = report;
    this.chosen = chosen;
    this.rebuild();
  }

  rebuild(): void {
    this.u?.destroy();
    this.u = null;
    const r = this.report;
    const width = Math.floor(this.host.clientWidth);
    if (!r || width <= 0) return;
    const p = palette();
    const xs = r.levels.map((l) => l.concurrency);
    const data: uPlot.AlignedData = [
      xs,
      r.levels.map((l) => l.p99Ms),
      r.levels.map((l) => l.throughput),
    ] as uPlot.AlignedData;
    const log = xs.length > 2 && xs[0] >= 1 && xs[xs.length - 1] / xs[0] >= 8;
    const chosen = this.chosen;
    const budget = r.latencyThresholdMs;
    // Concurrency labels are centred on their tick: the side axes leave room for half of one.
    const halfX = Math.ceil(textWidth(p.font, String(xs[xs.length - 1] ?? 0)) / 2) + 2;
    const marks: uPlot.Plugin = {
      hooks: {
        draw: [
          (u) => {
            const ctx = u.ctx;
            const { left, top, width: w, height: hgt } = u.bbox;
            const dpr = uPlot.pxRatio;
            ctx.save();
            ctx.font = `${Math.round(11 * dpr)}px ${cssVar('--font-sans') || 'sans-serif'}`;
            if (budget !== null) {
              const y = u.valToPos(budget, 'ms', true);
              if (y >= top && y <= top + hgt) {
                ctx.strokeStyle = p.warn;
                ctx.globalAlpha = 0.7;
                ctx.setLineDash([4 * dpr, 4 * dpr]);
                ctx.lineWidth = dpr;
                ctx.beginPath();
                ctx.moveTo(left, y);
                ctx.lineTo(left + w, y);
                ctx.stroke();
                ctx.globalAlpha = 1;
                ctx.fillStyle = p.warn;
                ctx.textAlign = 'left';
                ctx.fillText(`p99 budget ${fmtMs(budget)}`, left + 6 * dpr, y - 4 * dpr);
              }
            }
            if (chosen !== null) {
              const x = u.valToPos(chosen, 'x', true);
              if (x >= left && x <= left + w) {
                ctx.strokeStyle = p.mark;
                ctx.lineWidth = 2 * dpr;
                ctx.setLineDash([]);
                ctx.beginPath();
                ctx.moveTo(x, top);
                ctx.lineTo(x, top + hgt);
                ctx.stroke();
                ctx.fillStyle = p.mark;
                const share = r.choice?.throughputShare;
                const label =
                  share !== null && share !== undefined
                    ? `capacity ${chosen} · ${Math.round(share * 100)}% of peak`
                    : `capacity ${chosen}`;
                const right = x + ctx.measureText(label).width + 10 * dpr < left + w;
                ctx.textAlign = right ? 'left' : 'right';
                ctx.fillText(label, x + (right ? 6 : -6) * dpr, top + hgt - 6 * dpr);
              }
            }
            ctx.restore();
          },
        ],
      },
    };
    const opts: uPlot.Options = {
      width,
      height: PROBE_HEIGHT,
      padding: [12, 6, 0, 0],
      plugins: [marks],
      cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 7 } },
      legend: { show: true, live: true },
      scales: {
        x: log ? { time: false, distr: 3, log: 2 } : { time: false },
        ms: {
          range: (_u, _min, max) => [0, Math.max(max || 0, budget ?? 0, 1) * 1.15],
        },
        rps: { range: (_u, _min, max) => [0, Math.max(max || 0, 1) * 1.15] },
      },
      axes: [
        axis(p, { label: 'concurrency', labelSize: 16, labelGap: 0, size: 34, space: 34 }),
        axis(p, {
          scale: 'ms',
          size: fitLabels(p.font, halfX),
          values: (_u, ticks) => ticks.map((v) => fmtMs(v)),
        }),
        axis(p, {
          scale: 'rps',
          side: 1,
          size: fitLabels(p.font, halfX),
          grid: { show: false },
          values: (_u, ticks) => ticks.map((v) => `${fmtNum(v)}/s`),
        }),
      ],
      series: [
        { label: 'concurrency', value: (_u, v) => (v === null ? '–' : String(v)) },
        {
          label: 'p99 latency',
          scale: 'ms',
          stroke: p.p99,
          width: 2,
          points: { show: true, size: 6, fill: p.p99 },
          value: (_u, v) => fmtMs(v),
        },
        {
          label: 'throughput',
          scale: 'rps',
          stroke: p.throughput,
          width: 2,
          points: { show: true, size: 6, fill: p.throughput },
          value: (_u, v) => (v === null ? '–' : `${fmtNum(v)}/s`),
        },
      ],
    };
    this.u = new uPlot(opts, data, this.host);
  }

  destroy(): void {
    this.ro.disconnect();
    this.u?.destroy();
  }
}
