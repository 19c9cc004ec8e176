/**
 * The adaptive run: a backend of true capacity 8 (50 ms per request, 50 ms more per request
 * beyond its capacity) drops to 4 at 8 s and recovers at 24 s, under 24 closed-loop clients,
 * once with `adaptive` on and once off (same manual start capacity 8). Samples the pool's
 * capacity every 250 ms and the p99 of the time inside the backend per second; writes
 * bench/results/adaptive-latest.{md,json} and the chart docs/adaptive-run.svg.
 *
 *   npm run bench -- adaptive
 *   ts-node --transpile-only bench/adaptive-run.ts
 */
import type { Type } from '@nestjs/common';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../test/harness/platforms';
import {
  adaptiveAppModule,
  closedLoop,
  p99,
  ShiftingModel,
} from '../test/adaptive/adaptive-fixtures';
import type { BenchSection } from './section';

const S = 50;
const DROP_S = 8;
const RECOVER_S = 24;
const END_S = 44;

interface Series {
  adaptive: boolean;
  /** [seconds, capacity] every 250 ms. */
  capacity: Array<[number, number]>;
  /** [second, p99 ms, requests] per whole second. */
  p99: Array<[number, number, number]>;
  phases: { before: number; degraded: number; afterFollow: number; recovered: number };
}

async function run(adaptive: boolean): Promise<Series> {
  const model = new ShiftingModel(8, S);
  const app = await startApp(
    'express',
    adaptiveAppModule(model, {
      healthEndpoint: false,
      probeOnStartup: false,
      ui: { enable: false },
      logger: false,
      endpoints: {
        '/predict': {
          method: 'POST',
          capacity: 8,
          // The default automatic interval (5 mean slot times: about 250 ms here).
          adaptive: adaptive ? { max: 16 } : false,
        },
      },
    }) as unknown as Type,
  );
  const t0 = Date.now();
  const load = closedLoop([app.url], 24);
  const capacity: Array<[number, number]> = [];
  try {
    for (;;) {
      const t = (Date.now() - t0) / 1000;
      if (t >= END_S) break;
      if (t >= DROP_S && t < RECOVER_S) model.k = 4;
      else model.k = 8;
      const stats = (await (await fetch(`${app.url}/balancer/stats`)).json()) as {
        endpoints: Record<string, { capacity: number }>;
      };
      capacity.push([Math.round(t * 100) / 100, stats.endpoints['/predict'].capacity]);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await load.stop();
    await app.close();
  }
  const p99s: Array<[number, number, number]> = [];
  for (let s = 0; s < END_S; s++) {
    const ms = model.served.filter(
      (x) => x.start >= t0 + s * 1000 && x.start < t0 + (s + 1) * 1000,
    );
    p99s.push([s, p99(ms.map((x) => x.ms)), ms.length]);
  }
  const window = (a: number, b: number): number =>
    p99(
      model.served
        .filter((x) => x.start >= t0 + a * 1000 && x.start < t0 + b * 1000)
        .map((x) => x.ms),
    );
  return {
    adaptive,
    capacity,
    p99: p99s,
    phases: {
      before: window(2, DROP_S),
      degraded: window(DROP_S, DROP_S + 2),
      afterFollow: window(DROP_S + 6, RECOVER_S),
      recovered: window(RECOVER_S + 14, END_S),
    },
  };
}

function svg(on: Series, off: Series): string {
  const W = 760;
  const H = 360;
  const L = 50;
  const R = 60;
  const T = 30;
  const B = 40;
  const pw = W - L - R;
  const ph = H - T - B;
  const x = (s: number): number => L + (s / END_S) * pw;
  const capMax = 16;
  const yc = (c: number): number => T + ph - (c / capMax) * ph;
  const msMax = 400;
  const ym = (ms: number): number => T + ph - (Math.min(ms, msMax) / msMax) * ph;
  const path = (pts: Array<[number, number]>): string =>
    pts.map(([a, b], i) => `${i ? 'L' : 'M'}${a.toFixed(1)},${b.toFixed(1)}`).join(' ');
  const step = (pts: Array<[number, number]>): Array<[number, number]> =>
    pts.flatMap(([t, c], i) => (i ? [[t, pts[i - 1][1]] as [number, number], [t, c]] : [[t, c]]));
  const capOn = path(step(on.capacity).map(([t, c]) => [x(t), yc(c)]));
  const p99On = path(on.p99.filter(([, , n]) => n > 0).map(([s, ms]) => [x(s + 0.5), ym(ms)]));
  const p99Off = path(off.p99.filter(([, , n]) => n > 0).map(([s, ms]) => [x(s + 0.5), ym(ms)]));
  const grid = [0, 4, 8, 12, 16]
    .map(
      (c) =>
        `<line x1="${L}" x2="${W - R}" y1="${yc(c)}" y2="${yc(c)}" stroke="#ddd"/>` +
        `<text x="${L - 8}" y="${yc(c) + 4}" text-anchor="end">${c}</text>` +
        `<text x="${W - R + 8}" y="${yc(c) + 4}">${(c / capMax) * msMax}</text>`,
    )
    .join('');
  const ticks = [0, 8, 16, 24, 32, 40]
    .map((s) => `<text x="${x(s)}" y="${H - B + 18}" text-anchor="middle">${s}</text>`)
    .join('');
  const band = `<rect x="${x(DROP_S)}" y="${T}" width="${x(RECOVER_S) - x(DROP_S)}" height="${ph}" fill="#fbe9e7"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="#fff"/>
${band}
<text x="${(x(DROP_S) + x(RECOVER_S)) / 2}" y="${T + 14}" text-anchor="middle" fill="#bf360c">true capacity 4</text>
${grid}${ticks}
<text x="${L}" y="18">capacity (left) · p99 inside the backend per second, ms (right) · 24 closed-loop clients</text>
<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">seconds</text>
<path d="${p99Off}" fill="none" stroke="#9e9e9e" stroke-width="1.5" stroke-dasharray="4 3"/>
<path d="${p99On}" fill="none" stroke="#1e88e5" stroke-width="1.5"/>
<path d="${capOn}" fill="none" stroke="#e53935" stroke-width="2.5"/>
<g transform="translate(${W - R - 250},${T + 30})">
<line x2="20" stroke="#e53935" stroke-width="2.5"/><text x="26" y="4">capacity, adaptive on</text>
<line y1="16" y2="16" x2="20" stroke="#1e88e5" stroke-width="1.5"/><text x="26" y="20">p99, adaptive on</text>
<line y1="32" y2="32" x2="20" stroke="#9e9e9e" stroke-dasharray="4 3"/><text x="26" y="36">p99, adaptive off (capacity stays 8)</text>
</g>
</svg>
`;
}

export async function runAdaptiveBench(): Promise<BenchSection> {
  const load = loadavg();
  const on = await run(true);
  const off = await run(false);
  const firstAt = (s: Series, pred: (c: number) => boolean, after: number): number | null =>
    s.capacity.find(([t, c]) => t >= after && pred(c))?.[0] ?? null;
  const down = firstAt(on, (c) => c <= 4, DROP_S);
  const up = firstAt(on, (c) => c >= 8, RECOVER_S);
  const up7 = firstAt(on, (c) => c >= 7, RECOVER_S);
  const caps = on.capacity.filter(([, c], i, a) => i === 0 || c !== a[i - 1][1]);
  const root = join(__dirname, '..');
  mkdirSync(join(root, 'docs'), { recursive: true });
  writeFileSync(join(root, 'docs', 'adaptive-run.svg'), svg(on, off));
  const row = (s: Series): string =>
    `| ${s.adaptive ? 'on' : 'off'} | ${s.phases.before} | ${s.phases.degraded} | ${s.phases.afterFollow} | ${s.phases.recovered} |`;
  const markdown = [
    `Backend: true capacity 8, 50 ms per request, +50 ms per request beyond its capacity; drops to 4`,
    `at ${DROP_S} s, back to 8 at ${RECOVER_S} s. 24 closed-loop clients, start capacity 8 (manual),`,
    `\`adaptive: { max: 16 }\` (automatic interval; min derived: 2). Load average at start: ${load.map((v) => v.toFixed(2)).join(' ')}`,
    `(shared machine: read the shape, not the milliseconds).`,
    '',
    `Capacity over time (adaptive on): ${caps.map(([t, c]) => `${c} @ ${t.toFixed(1)} s`).join(', ')}.`,
    `Followed the drop in ${down === null ? '—' : `${(down - DROP_S).toFixed(1)} s`}; back to >= 7 ${up7 === null ? 'not within the run' : `${(up7 - RECOVER_S).toFixed(1)} s`} and to 8 ${up === null ? 'not within the run' : `${(up - RECOVER_S).toFixed(1)} s`} after the recovery (100 service times = ${(100 * S) / 1000} s).`,
    '',
    '| adaptive | p99 before drop (ms) | p99 first 2 s after drop | p99 from 6 s after drop to recovery | p99 last 6 s |',
    '|---|---:|---:|---:|---:|',
    row(on),
    row(off),
    '',
    'Chart: [docs/adaptive-run.svg](../../docs/adaptive-run.svg).',
  ].join('\n');
  const data = { loadAverage: load, on, off, followedS: down, recovered7S: up7, recoveredS: up };
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adaptive-latest.json'), JSON.stringify(data, null, 2));
  writeFileSync(join(dir, 'adaptive-latest.md'), `## Adaptive capacity run\n\n${markdown}\n`);
  return { title: 'Adaptive capacity run', markdown, data };
}

if (require.main === module) {
  runAdaptiveBench()
    .then((s) => console.log(`## ${s.title}\n\n${s.markdown}`))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
