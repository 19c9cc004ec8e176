import { Controller, Module, Post, type Type } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Balanced, BalancerModule, CapacityStore, type BalancerModuleOptions } from '../../src';
import type { BalancerHistory } from '../../src/dashboard/stats-history.service';
import type { LevelStats, ProbeResult } from '../../src/probe/probe.types';
import { startApp, type PlatformName, type RunningApp } from '../harness/platforms';
import { waitFor } from '../harness/wait-for';

const OUT = join(__dirname, '..', '..', 'test-output');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

@Controller()
class LoadController {
  /** 4 slots of 300 ms: eight clients keep it full with a queue. */
  @Post('predict')
  @Balanced({ capacity: 4, maxQueue: 20, queueTimeout: 5 })
  async predict(): Promise<{ ok: boolean }> {
    await sleep(300);
    return { ok: true };
  }

  /** Shown with a stored probe report (the level table and its chart). */
  @Post('embed')
  @Balanced({ pool: 'embeddings' })
  async embed(): Promise<{ ok: boolean }> {
    await sleep(80);
    return { ok: true };
  }
}

function loadApp(options: Exclude<BalancerModuleOptions, string>): Type {
  @Module({
    imports: [BalancerModule.forRoot({ healthEndpoint: false, probeOnStartup: false, ...options })],
    controllers: [LoadController],
  })
  class LoadModule {}
  return LoadModule;
}

@Module({ imports: [BalancerModule.forRoot({ healthEndpoint: false, probeOnStartup: false })] })
class EmptyModule {}

/**
 * A probe result in the probe's own shape (type-checked against `ProbeResult`). `scale`
 * multiplies latencies and throughputs: 20 gives labels like "8,200 ms" and "1,160/s".
 */
function probeReport(scale = 1): ProbeResult {
  const level = (
    concurrency: number,
    p99Ms: number,
    throughputRps: number,
    pass: boolean,
  ): LevelStats => ({
    concurrency,
    phase: 'step',
    requests: Math.round(throughputRps),
    warmupRequests: 10,
    errors: pass ? 0 : 3,
    timeouts: 0,
    errorRate: pass ? 0 : 3 / throughputRps,
    statuses: { '201': Math.round(throughputRps) },
    p50Ms: p99Ms * scale * 0.7,
    p99Ms: p99Ms * scale,
    maxMs: p99Ms * scale * 1.1,
    meanMs: p99Ms * scale * 0.75,
    throughputRps: throughputRps * scale,
    littleConcurrency: concurrency,
    littleOk: true,
    windowMs: 1000,
    pass,
    failure: pass ? undefined : 'latency',
    early: false,
  });
  return {
    maxConcurrency: 6,
    stopReason: 'limit',
    target: 'POST http://127.0.0.1/embed',
    levels: [
      level(1, 84, 12, true),
      level(2, 86, 24, true),
      level(4, 92, 46, true),
      level(8, 410, 52, false),
      level(6, 128, 58, true),
      level(7, 260, 55, false),
    ],
    thresholds: { errorThreshold: 0.05, latencyThresholdMs: 200 * scale },
    requests: 420,
    startedAt: new Date(Date.now() - 9000).toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: 8600,
    warnings: [],
  };
}

/** Clients that keep posting to the app until stopped (bounded: 90 s at most). */
function startLoad(url: string, plan: Array<[path: string, clients: number]>): () => Promise<void> {
  let stop = false;
  const deadline = Date.now() + 90_000;
  const loops = plan.flatMap(([path, clients]) =>
    Array.from({ length: clients }, async () => {
      while (!stop && Date.now() < deadline) {
        try {
          const res = await fetch(`${url}${path}`, { method: 'POST' });
          await res.arrayBuffer();
        } catch {
          await sleep(50); // server closing
        }
      }
    }),
  );
  return async () => {
    stop = true;
    await Promise.all(loops);
  };
}

async function num(page: Page, pool: string, field: string): Promise<number> {
  const text = await page
    .locator(`[data-pool="${pool}"] [data-field="${field}"]`)
    .first()
    .textContent();
  return Number((text ?? '').replace(/[^0-9.]/g, ''));
}

/**
 * The little of the DOM the evaluated functions use (the root tsconfig has no DOM lib: these
 * functions run in the page, not in Node).
 */
interface PageGlobals {
  document: {
    querySelector(selector: string): PageCanvas | null;
    documentElement: object;
    body: { appendChild(node: object): void };
    createElement(tag: string): { style: { color: string }; remove(): void };
  };
  getComputedStyle(el: object): { color: string; getPropertyValue(name: string): string };
}
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
  };
}

/** Pixels of `rgb` (±12 per channel) in the first canvas under `selector`. */
async function pixelsOf(
  page: Page,
  selector: string,
  rgb: [number, number, number],
): Promise<number> {
  return page.evaluate(
    ({ selector, rgb }) => {
      const { document } = globalThis as unknown as PageGlobals;
      const canvas = document.querySelector(`${selector} canvas`);
      if (!canvas || canvas.width === 0 || canvas.height === 0) return -1;
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        const near =
          Math.abs(data[i] - rgb[0]) < 13 &&
          Math.abs(data[i + 1] - rgb[1]) < 13 &&
          Math.abs(data[i + 2] - rgb[2]) < 13;
        if (data[i + 3] > 200 && near) n++;
      }
      return n;
    },
    { selector, rgb },
  );
}

/** A CSS colour of the page as [r, g, b]. */
async function cssRgb(page: Page, name: string): Promise<[number, number, number]> {
  return page.evaluate((name) => {
    const { document, getComputedStyle } = globalThis as unknown as PageGlobals;
    const probe = document.createElement('span');
    probe.style.color = getComputedStyle(document.documentElement).getPropertyValue(name);
    document.body.appendChild(probe);
    const m = /rgba?\((\d+), (\d+), (\d+)/.exec(getComputedStyle(probe).color)!;
    probe.remove();
    return [Number(m[1]), Number(m[2]), Number(m[3])] as [number, number, number];
  }, name);
}

interface AxisInk {
  chart: string;
  pool: string;
  /** Ink pixels in the two outermost columns of the canvas, left and right. */
  edgeLeft: number;
  edgeRight: number;
  /** Ink in the 60 columns inside them, where the side axes draw their labels. */
  leftLabels: number;
  rightLabels: number;
  /** Where the plot area starts (CSS px from the canvas's left): the left axis's width. */
  plotLeft: number;
}

interface PageChart {
  getAttribute(name: string): string | null;
  closest(selector: string): PageChart | null;
  querySelector(selector: string): PageCanvas | null;
}

/** Where the axis labels of every chart on the page put their ink. */
async function axisInk(page: Page): Promise<AxisInk[]> {
  return page.evaluate(() => {
    const doc = (
      globalThis as unknown as { document: { querySelectorAll(s: string): PageChart[] } }
    ).document;
    return [...doc.querySelectorAll('[data-chart]')].flatMap((host) => {
      const canvas = host.querySelector('canvas');
      if (!canvas || canvas.width === 0) return [];
      const over = host.querySelector('.u-over') as unknown as { style: { left: string } } | null;
      const { width: w, height: h } = canvas;
      const data = canvas.getContext('2d').getImageData(0, 0, w, h).data;
      const ink = (from: number, to: number): number => {
        let n = 0;
        for (let y = 0; y < h; y++)
          for (let x = Math.max(0, from); x < Math.min(w, to); x++)
            if (data[(y * w + x) * 4 + 3] > 40) n++;
        return n;
      };
      return [
        {
          chart: host.getAttribute('data-chart') ?? '',
          pool: host.closest('[data-pool]')?.getAttribute('data-pool') ?? '',
          edgeLeft: ink(0, 2),
          edgeRight: ink(w - 2, w),
          leftLabels: ink(2, 62),
          rightLabels: ink(w - 62, w - 2),
          plotLeft: parseFloat(over?.style.left ?? '0'),
        },
      ];
    });
  });
}

/** Width in CSS px of `text` in the charts' axis font (11 px of the page's --font-sans). */
async function axisTextWidth(page: Page, text: string): Promise<number> {
  return page.evaluate((text) => {
    const g = globalThis as unknown as PageGlobals;
    const family = g.getComputedStyle(g.document.documentElement).getPropertyValue('--font-sans');
    const canvas = g.document.createElement('canvas') as unknown as PageMeasureCanvas;
    const ctx = canvas.getContext('2d');
    ctx.font = `11px ${family.trim() || 'system-ui, sans-serif'}`;
    return ctx.measureText(text).width;
  }, text);
}
interface PageMeasureCanvas {
  getContext(kind: '2d'): { font: string; measureText(text: string): { width: number } };
}

/** A capacity whose history labels are six digits wide ("100,000"). */
const BIG_CAPACITY = 120_000;

describe('dashboard in a real browser', () => {
  let browser: Browser;
  let running: RunningApp | undefined;
  let stopLoad: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });
  /** Open pages keep polling: close them before the app so its server can shut down. */
  const contexts: BrowserContext[] = [];
  async function newContext(
    options: Parameters<Browser['newContext']>[0] = {},
  ): Promise<BrowserContext> {
    const context = await browser.newContext(options);
    contexts.push(context);
    return context;
  }
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await stopLoad?.();
    stopLoad = undefined;
    await running?.close();
    running = undefined;
  });

  async function startLoaded(
    platform: PlatformName,
    options: Exclude<BalancerModuleOptions, string>,
    report = probeReport(),
  ) {
    running = await startApp(platform, loadApp(options));
    const store = running.app.get<CapacityStore>(CapacityStore);
    await store.setCapacity('embeddings', report.maxConcurrency, 'probe');
    await store.saveProbeResult('embeddings', {
      maxConcurrency: report.maxConcurrency,
      measuredAt: report.finishedAt,
      durationMs: report.durationMs,
      report,
    });
    stopLoad = startLoad(running.url, [
      ['/predict', 8],
      ['/embed', 4],
    ]);
    return running;
  }

  it('shows live cards, the history chart and the probe report under load (express, default path)', async () => {
    const { url } = await startLoaded('express', {});
    for (const scheme of ['light', 'dark'] as const) {
      const context = await newContext({
        viewport: { width: 1360, height: 1000 },
        colorScheme: scheme,
      });
      const page = await context.newPage();
      const response = await page.goto(`${url}/balancer/ui`);
      expect(response?.status()).toBe(200);
      expect(new URL(page.url()).pathname).toBe('/balancer/ui/');

      const card = page.locator('[data-pool="/predict"]');
      await card.waitFor({ timeout: 15_000 });
      expect(await card.locator('[data-field="capacity"]').textContent()).toBe('4');
      expect(await card.locator('[data-field="source"]').textContent()).toBe('manual');
      expect(await card.locator('[data-field="health"]').textContent()).toBe('Healthy');

      // Live numbers: the admitted counter moves between polls; the pool is full with a queue.
      const admitted0 = await num(page, '/predict', 'admitted');
      await waitFor(
        async () => (await num(page, '/predict', 'admitted')) > admitted0,
        15_000,
        'admitted to change',
      );
      await waitFor(
        async () =>
          (await num(page, '/predict', 'active')) === 4 &&
          (await num(page, '/predict', 'queued')) > 0,
        15_000,
        'a full pool with a queue',
      );
      expect(await card.locator('.util').getAttribute('class')).toContain('util-full');
      expect(await card.locator('[data-field="utilization"]').textContent()).toBe('100%');

      // The history chart draws the active series (its colour is on the canvas).
      const active = await cssRgb(page, '--series-active');
      const chart = '[data-pool="/predict"] [data-chart="history"]';
      await waitFor(
        async () => (await pixelsOf(page, chart, active)) > 200,
        20_000,
        'the active series to be drawn',
      );
      const box = await page.locator(`${chart} canvas`).boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      expect(box!.height).toBeGreaterThan(100);

      // The probe report of the probed pool: one row per level, the chosen capacity marked.
      const probed = page.locator('[data-pool="embeddings"]');
      await probed.locator('table[data-table="probe-levels"] tbody tr').first().waitFor();
      expect(await probed.locator('[data-field="source"]').textContent()).toBe('probed');
      expect(await probed.locator('table[data-table="probe-levels"] tbody tr').count()).toBe(6);
      expect((await probed.locator('tr.chosen td').first().textContent())?.trim()).toBe('6');
      const p99 = await cssRgb(page, '--series-p99');
      await waitFor(
        async () =>
          (await pixelsOf(page, '[data-pool="embeddings"] [data-chart="probe"]', p99)) > 50,
        10_000,
        'the probe chart',
      );
      const mark = await cssRgb(page, '--green');
      expect(
        await pixelsOf(page, '[data-pool="embeddings"] [data-chart="probe"]', mark),
      ).toBeGreaterThan(50);

      await page.screenshot({ path: join(OUT, `dashboard-express-${scheme}.png`), fullPage: true });
      await context.close();
    }
  });

  it('fits every axis label of every chart at 1,400 and 800 px', async () => {
    // Seconds of latency and thousands of requests per second: the widest probe labels there
    // are; capacities in the hundred thousands: the widest history labels ("150,000").
    const { url, app } = await startLoaded('express', {}, probeReport(20));
    const store = app.get<CapacityStore>(CapacityStore);
    const pools = ['/predict', 'embeddings'];
    for (const pool of pools) await store.setCapacity(pool, BIG_CAPACITY, 'manual');
    await waitFor(
      async () => {
        const h = (await (await fetch(`${url}/balancer/history`)).json()) as BalancerHistory;
        return pools.every((pool) => h.pools[pool]?.capacity.at(-1) === BIG_CAPACITY);
      },
      15_000,
      'the large capacities in the history',
    );
    for (const width of [1400, 800]) {
      const context = await newContext({ viewport: { width, height: 1000 } });
      const page = await context.newPage();
      await page.goto(`${url}/balancer/ui/`);
      const probeChart = '[data-pool="embeddings"] [data-chart="probe"]';
      const p99 = await cssRgb(page, '--series-p99');
      await waitFor(
        async () => (await pixelsOf(page, probeChart, p99)) > 50,
        15_000,
        'probe chart',
      );
      // The history arrives with the first poll; the charts then draw their axes.
      let charts: AxisInk[] = [];
      await waitFor(
        async () => {
          charts = await axisInk(page);
          return charts.length === 3 && charts.every((c) => c.leftLabels > 20);
        },
        15_000,
        'every chart with its axes',
      );
      // Both pools' history charts and the probe chart.
      expect(charts.map((c) => c.chart).sort()).toEqual(['history', 'history', 'probe']);
      // "100,000" is a tick of every scale uPlot picks for 0 .. 1.15 x 120,000.
      const widest = await axisTextWidth(page, '100,000');
      for (const c of charts) {
        // A label cut by the canvas edge leaves ink in its outermost columns; labels that fit
        // leave those columns empty. The bands next to them hold the labels (not a blank chart).
        const where = [width, c.chart, c.pool];
        expect([...where, c.edgeLeft, c.edgeRight]).toEqual([...where, 0, 0]);
        expect(c.leftLabels).toBeGreaterThan(20);
      }
      // The probe chart has a right axis, with labels.
      for (const c of charts.filter((x) => x.chart === 'probe'))
        expect([width, c.rightLabels > 20]).toEqual([width, true]);
      // The history axis made room for six-digit capacities: the plot starts right of them.
      for (const c of charts.filter((x) => x.chart === 'history'))
        expect([width, c.pool, c.plotLeft >= widest]).toEqual([width, c.pool, true]);
      await page.screenshot({ path: join(OUT, `dashboard-axes-${width}.png`), fullPage: true });
      await context.close();
    }
  });

  it('works under a custom ui.path with credentials (fastify), and shows its error states', async () => {
    const { url } = await startLoaded('fastify', {
      ui: { path: '/ops/console', username: 'ops', password: 'ünïcode-🔑' },
    });

    // Without credentials the browser gets the 401 challenge (headless Chromium cannot prompt).
    const anonymous = await newContext();
    await expect((await anonymous.newPage()).goto(`${url}/ops/console/`)).rejects.toThrow(
      /ERR_INVALID_AUTH_CREDENTIALS/,
    );
    const denied = await anonymous.request.get(`${url}/ops/console/`);
    expect(denied.status()).toBe(401);
    expect(denied.headers()['www-authenticate']).toContain('Basic');
    await anonymous.close();

    const context = await newContext({
      viewport: { width: 1280, height: 900 },
      httpCredentials: { username: 'ops', password: 'ünïcode-🔑' },
    });
    const page = await context.newPage();
    expect((await page.goto(`${url}/ops/console`))?.status()).toBe(200);
    await page.locator('[data-pool="/predict"]').waitFor({ timeout: 15_000 });
    const admitted0 = await num(page, '/predict', 'admitted');
    await waitFor(
      async () => (await num(page, '/predict', 'admitted')) > admitted0,
      15_000,
      'admitted to change',
    );
    const active = await cssRgb(page, '--series-active');
    await waitFor(
      async () =>
        (await pixelsOf(page, '[data-pool="/predict"] [data-chart="history"]', active)) > 200,
      20_000,
      'the active series to be drawn',
    );
    await page.screenshot({ path: join(OUT, 'dashboard-fastify-custom-path.png'), fullPage: true });

    // The server goes away: the cards stay (dimmed) under a banner, and the page keeps retrying.
    await stopLoad?.();
    stopLoad = undefined;
    await running?.close();
    running = undefined;
    await page.locator('.banner-error').waitFor({ timeout: 15_000 });
    expect(await page.locator('.banner-error').textContent()).toContain('Stats unreachable');
    expect(await page.locator('[data-pool="/predict"]').count()).toBe(1);
    await context.close();
  });

  it('designs the empty and the signed-out states', async () => {
    running = await startApp('express', EmptyModule);
    const context = await newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${running.url}/balancer/ui/`);
    await page.locator('.state-panel[data-state="empty"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('.state-panel h2').textContent()).toBe('No watched endpoints');

    // Stats answering 401 (credentials changed under an open page): a sign-in state, not a blank.
    await page.route('**/balancer/stats', (route) =>
      route.fulfill({ status: 401, headers: { 'www-authenticate': 'Basic' }, body: '{}' }),
    );
    const fresh = await context.newPage();
    await fresh.route('**/balancer/stats', (route) => route.fulfill({ status: 401, body: '{}' }));
    await fresh.goto(`${running.url}/balancer/ui/`);
    await fresh.locator('.state-panel[data-state="auth"]').waitFor({ timeout: 15_000 });
    expect(await fresh.locator('.state-panel h2').textContent()).toBe('Sign-in required');
    await fresh.screenshot({ path: join(OUT, 'dashboard-signed-out.png') });
    await context.close();
  });
});
