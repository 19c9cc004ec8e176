import 'uplot/dist/uPlot.min.css';
import './style.css';
import { fetchHistory, fetchStats, readConfig, type Failure } from './api';
import { h, icon, replace, setText } from './dom';
import { fmtClock, fmtInt } from './format';
import { PoolCard } from './pool-card';
import type { BalancerStats, PoolHistory } from './types';

const config = readConfig();
const RANGES = [60, 300];

interface State {
  stats: BalancerStats | null;
  error: Failure | null;
  lastOk: number | null;
  range: number;
}

const state: State = { stats: null, error: null, lastOk: null, range: RANGES[0] };
const history = new Map<string, PoolHistory>();
const cards = new Map<string, PoolCard>();
let lastSample: number | undefined;

// ---- shell -------------------------------------------------------------------------------
const healthPill = h('span', { class: 'pill', 'data-field': 'app-health' }, '…');
const storePill = h('span', { class: 'pill pill-neutral', 'data-field': 'store' }, '…');
const livePill = h(
  'span',
  { class: 'pill pill-neutral live', 'data-field': 'live' },
  h('span', { class: 'dot' }),
  'connecting',
);
const worker = h('span', { class: 'worker' });
const rangeButtons = RANGES.map((s) => {
  const b = h(
    'button',
    { type: 'button', 'data-range': String(s) },
    s < 120 ? `${s} s` : `${s / 60} min`,
  );
  b.addEventListener('click', () => {
    state.range = s;
    render();
  });
  return b;
});
const rangeControl = h(
  'div',
  { class: 'segmented', role: 'group', 'aria-label': 'Chart range' },
  ...rangeButtons,
);
const banner = h('div', { class: 'banner', hidden: '' });
const summary = h('div', { class: 'summary' });
const grid = h('main', { class: 'grid', 'data-view': 'cards' });
const panel = h('div', { class: 'state-panel' });

const app = document.getElementById('app')!;
replace(
  app,
  h(
    'header',
    { class: 'topbar' },
    h(
      'div',
      { class: 'brand' },
      h('span', { class: 'logo', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')),
      h('div', null, h('h1', null, 'Balancer'), worker),
    ),
    h('div', { class: 'topbar-right' }, healthPill, storePill, livePill, rangeControl),
  ),
  banner,
  summary,
  panel,
  grid,
);

// ---- states ------------------------------------------------------------------------------
function showPanel(kind: string, title: string, text: string, extra?: HTMLElement): void {
  panel.hidden = false;
  panel.setAttribute('data-state', kind);
  replace(
    panel,
    h(
      'div',
      { class: `state-icon state-${kind}`, 'aria-hidden': 'true' },
      kind === 'loading'
        ? null
        : icon(kind === 'auth' ? 'lock' : kind === 'empty' ? 'empty' : 'alert'),
    ),
    h('h2', null, title),
    h('p', null, text),
    extra,
  );
}

function errorText(e: Failure): { title: string; text: string } {
  if (e.kind === 'auth') {
    return {
      title: 'Sign-in required',
      text: `The stats API answered ${e.status}. Reload the page and enter the dashboard credentials (ui.username / ui.password).`,
    };
  }
  if (e.kind === 'http') {
    return {
      title: `Stats answered ${e.status}`,
      text: `${e.message || 'Unexpected response'} — retrying every ${config.pollMs / 1000} s.`,
    };
  }
  return {
    title: 'Stats unreachable',
    text: `The server did not answer (${e.message}) — retrying every ${config.pollMs / 1000} s.`,
  };
}

function reloadButton(): HTMLElement {
  const b = h('button', { type: 'button', class: 'button' }, 'Reload');
  b.addEventListener('click', () => window.location.reload());
  return b;
}

// ---- render ------------------------------------------------------------------------------
function render(): void {
  for (const b of rangeButtons)
    b.classList.toggle('active', Number(b.dataset.range) === state.range);
  const s = state.stats;
  const e = state.error;
  healthPill.hidden = !s;
  storePill.hidden = !s;

  if (e) {
    const { title, text } = errorText(e);
    setText(livePill.lastChild!, e.kind === 'auth' ? 'signed out' : 'offline');
    livePill.className = 'pill pill-bad live';
    if (!s) {
      showPanel(
        e.kind === 'auth' ? 'auth' : 'error',
        title,
        text,
        e.kind === 'auth' ? reloadButton() : undefined,
      );
      grid.hidden = true;
      return;
    }
    banner.hidden = false;
    banner.className = `banner banner-${e.kind === 'auth' ? 'auth' : 'error'}`;
    replace(
      banner,
      h('strong', null, title),
      ` ${text} Showing data from ${state.lastOk ? fmtClock(state.lastOk) : '–'}.`,
    );
    grid.classList.add('stale');
  } else {
    banner.hidden = true;
    grid.classList.remove('stale');
  }

  if (!s) {
    showPanel(
      'loading',
      'Connecting…',
      `Loading ${new URL(config.statsUrl, document.baseURI).pathname}`,
    );
    grid.hidden = true;
    return;
  }

  if (!e) {
    livePill.className = 'pill pill-live live';
    setText(livePill.lastChild!, `live · ${fmtClock(state.lastOk ?? Date.now())}`);
  }
  setText(worker, `${s.worker.hostname} · pid ${s.worker.pid}`);
  healthPill.className = `pill ${s.shutting_down ? 'pill-warn' : s.healthy ? 'pill-ok' : 'pill-bad'}`;
  setText(healthPill, s.shutting_down ? 'Shutting down' : s.healthy ? 'Healthy' : 'Unhealthy');
  storePill.className = `pill ${s.store.reachable ? 'pill-neutral' : 'pill-bad'}`;
  setText(storePill, `${s.store.type} store${s.store.reachable ? '' : ' · unreachable'}`);

  const pools = Object.keys(s.endpoints).sort();
  renderSummary(s, pools);
  if (pools.length === 0) {
    const hint = h(
      'pre',
      { class: 'code' },
      "@Post('predict')\n@Balanced()\npredict() { … }\n\n// or BalancerModule.forRoot({ endpoints: { '/predict': { … } } })",
    );
    showPanel(
      'empty',
      'No watched endpoints',
      'Mark a route with @Balanced() or list its path under endpoints, and it appears here.',
      hint,
    );
    grid.hidden = true;
  } else {
    panel.hidden = true;
    grid.hidden = false;
  }

  for (const [pool, card] of cards) {
    if (!(pool in s.endpoints)) {
      card.destroy();
      cards.delete(pool);
    }
  }
  const now = lastSample ?? Date.parse(s.generated_at) / 1000;
  for (const pool of pools) {
    let card = cards.get(pool);
    if (!card) {
      card = new PoolCard(pool);
      cards.set(pool, card);
    }
    // Keep DOM order sorted (cheap: a handful of pools).
    if (grid.children[pools.indexOf(pool)] !== card.el)
      grid.insertBefore(card.el, grid.children[pools.indexOf(pool)] ?? null);
    card.update(s.endpoints[pool], history.get(pool), now, state.range);
  }
}

function renderSummary(s: BalancerStats, pools: string[]): void {
  let active = 0;
  let queued = 0;
  let capacity = 0;
  let rejected = 0;
  let timedOut = 0;
  for (const p of pools) {
    const e = s.endpoints[p];
    active += e.active_requests;
    queued += e.queued;
    capacity += e.capacity ?? 0;
    rejected += e.rejected;
    // Every 504: the queue timeouts and the deadlines that passed in the queue.
    timedOut += e.timed_out + (e.deadline_expired ?? 0);
  }
  const item = (label: string, value: string, field: string) =>
    h(
      'div',
      { class: 'summary-item' },
      h('span', { class: 'summary-label' }, label),
      h('span', { class: 'summary-value', 'data-field': field }, value),
    );
  replace(
    summary,
    item('Endpoints', fmtInt(pools.length), 'pools'),
    item('In flight', `${fmtInt(active)} / ${fmtInt(capacity)}`, 'total-active'),
    item('Queued', fmtInt(queued), 'total-queued'),
    item('503 / 504', `${fmtInt(rejected)} / ${fmtInt(timedOut)}`, 'total-rejected'),
  );
}

// ---- data --------------------------------------------------------------------------------
function mergeHistory(pools: Record<string, PoolHistory>): void {
  for (const [pool, incoming] of Object.entries(pools)) {
    let h = history.get(pool);
    if (!h) history.set(pool, (h = { t: [], active: [], queued: [], capacity: [] }));
    const last = h.t.length ? h.t[h.t.length - 1] : -Infinity;
    for (let i = 0; i < incoming.t.length; i++) {
      if (incoming.t[i] <= last) continue;
      h.t.push(incoming.t[i]);
      h.active.push(incoming.active[i]);
      h.queued.push(incoming.queued[i]);
      h.capacity.push(incoming.capacity[i]);
    }
    if (h.t.length) lastSample = Math.max(lastSample ?? 0, h.t[h.t.length - 1]);
    // Keep what the server keeps.
    const from = (lastSample ?? 0) - config.historySeconds;
    let cut = 0;
    while (cut < h.t.length && h.t[cut] < from) cut++;
    if (cut > 0) {
      h.t.splice(0, cut);
      h.active.splice(0, cut);
      h.queued.splice(0, cut);
      h.capacity.splice(0, cut);
    }
  }
}

async function poll(): Promise<void> {
  const [stats, hist] = await Promise.all([fetchStats(config), fetchHistory(config, lastSample)]);
  if (hist.ok) mergeHistory(hist.data.pools);
  if (stats.ok) {
    state.stats = stats.data;
    state.error = null;
    state.lastOk = Date.now();
  } else {
    state.error = stats.error;
  }
  render();
}

async function loop(): Promise<void> {
  try {
    await poll();
  } finally {
    setTimeout(() => void loop(), config.pollMs);
  }
}

// Charts read their colours from CSS: rebuild them when the theme flips.
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  for (const c of cards.values()) c.redraw();
});

render();
void loop();
