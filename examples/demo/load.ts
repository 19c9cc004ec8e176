import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { assertLoopback, runClosedLoop } from '../../bench/lib/load';
import { WindowedLatency } from '../../bench/lib/stats';

/**
 * `npm run demo:load`: drive the running demo (`npm start`) into overload so the dashboard
 * shows what the balancer does about it: the queue fills, waits past the queue timeout answer
 * 504, and the latency of admitted requests stays flat instead of the model thrashing.
 *
 *   npm run demo:load -- [--url http://127.0.0.1:3000] [--concurrency 150] [--seconds 60]
 *
 * Closed-loop clients ramp up from 1 to --concurrency over the first third of the run, then
 * hold. Loopback only; stops by itself (or on Ctrl-C) and prints a line every second.
 */

interface Args {
  url: string;
  concurrency: number;
  seconds: number;
  path: string;
}

const USAGE = `npm run demo:load -- [--url URL] [--concurrency N] [--seconds S] [--path /predict]
  --url          the demo's base URL (default http://127.0.0.1:$PORT or :3000); loopback only
  --concurrency  clients at the peak (default 150: several times what the demo model takes)
  --seconds      length of the run (default 60)
  --path         the watched route to load (default /predict)`;

function parseArgs(argv: string[]): Args {
  const args: Args = {
    url: `http://127.0.0.1:${process.env.PORT ?? 3000}`,
    concurrency: 150,
    seconds: 60,
    path: '/predict',
  };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]);
    if (argv[i] === '--help' || argv[i] === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (!m || !['url', 'concurrency', 'seconds', 'path'].includes(m[1])) {
      throw new Error(`unknown argument ${argv[i]}\n${USAGE}`);
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    if (m[1] === 'url') args.url = value.replace(/\/+$/, '');
    else if (m[1] === 'path') args.path = value.startsWith('/') ? value : `/${value}`;
    else {
      const n = Number(value);
      const max = m[1] === 'concurrency' ? 5000 : 3600;
      if (!Number.isInteger(n) || n < 1 || n > max)
        throw new Error(`--${m[1]} must be an integer 1..${max}`);
      if (m[1] === 'concurrency') args.concurrency = n;
      else args.seconds = n;
    }
  }
  assertLoopback(args.url);
  return args;
}

interface PoolStats {
  capacity: number | null;
  capacity_source: string;
  active_requests: number;
  queued: number;
  queue_timeout?: number;
}

async function poolStats(args: Args): Promise<PoolStats | null> {
  try {
    const res = await request(`${args.url}/balancer/stats`, {
      headersTimeout: 2000,
      bodyTimeout: 2000,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return null;
    }
    const doc = (await res.body.json()) as { endpoints?: Record<string, PoolStats> };
    return doc.endpoints?.[args.path] ?? null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let pool = await poolStats(args);
  if (!pool) {
    console.error(
      `No balancer stats for ${args.path} at ${args.url}/balancer/stats.\n` +
        'Start the demo first (npm start, in another terminal), or pass --url / --path.',
    );
    process.exit(1);
  }
  const waitUntil = Date.now() + 60_000;
  while (pool && pool.capacity === null && Date.now() < waitUntil) {
    console.log('waiting for the startup probe to measure the capacity …');
    await new Promise((r) => setTimeout(r, 1000));
    pool = await poolStats(args);
  }
  console.log(
    `${args.path}: capacity ${pool?.capacity ?? '?'} (${pool?.capacity_source ?? '?'})` +
      `${pool?.queue_timeout ? `, queue timeout ${pool.queue_timeout} s` : ''}. ` +
      `Ramping to ${args.concurrency} clients over ${Math.round(args.seconds / 3)} s, for ${args.seconds} s.`,
  );
  console.log(`Watch the dashboard: ${args.url}/balancer/ui\n`);

  const totals = { sent: 0, ok: 0, s503: 0, s504: 0, other: 0, lost: 0 };
  const window = new WindowedLatency();
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  const rampMs = (args.seconds * 1000) / 3;
  const t0 = performance.now();
  let inFlight = 0;

  const ticker = setInterval(() => {
    void poolStats(args).then((p) => {
      const s = window.take();
      const elapsed = Math.round((performance.now() - t0) / 1000);
      const server = p
        ? `  | server: ${p.active_requests}/${p.capacity ?? '?'} running, ${p.queued} queued`
        : '';
      console.log(
        `${String(elapsed).padStart(3)}s  sent ${totals.sent}  2xx ${totals.ok}  503 ${totals.s503}  ` +
          `504 ${totals.s504}${totals.other ? `  other ${totals.other}` : ''}${totals.lost ? `  lost ${totals.lost}` : ''}  ` +
          `clients ${inFlight}  p99 ${s.p99Ms === null ? '-' : `${Math.round(s.p99Ms)} ms`}${server}`,
      );
    });
  }, 1000);

  const result = await runClosedLoop({
    target: { urls: [args.url], path: args.path, method: 'POST', body: { input: 'demo load' } },
    clients: (elapsedMs) =>
      Math.max(1, Math.min(args.concurrency, Math.ceil((elapsedMs / rampMs) * args.concurrency))),
    durationMs: args.seconds * 1000,
    requestTimeoutMs: 120_000,
    drainTimeoutMs: 30_000,
    maxRequests: 10_000_000,
    signal: stop.signal,
    onSend: () => {
      totals.sent++;
      inFlight++;
    },
    onResponse: (status, ms) => {
      inFlight--;
      if (status >= 200 && status < 300) {
        totals.ok++;
        window.add(ms);
      } else if (status === 503) totals.s503++;
      else if (status === 504) totals.s504++;
      else totals.other++;
    },
    onLost: () => {
      inFlight--;
      totals.lost++;
    },
  });
  clearInterval(ticker);

  const l = result.latency;
  console.log(
    `\ndone: ${totals.sent} sent, ${totals.ok} answered 2xx (p50 ${Math.round(l.p50Ms ?? 0)} ms, ` +
      `p99 ${Math.round(l.p99Ms ?? 0)} ms), ${totals.s503} x 503, ${totals.s504} x 504, ` +
      `${totals.other} other, ${totals.lost} lost.`,
  );
  console.log(
    'Admitted requests ran at the model\u2019s own speed; the rest waited in the FIFO queue and ' +
      'got 504 when the wait passed the queue timeout. Without the balancer the model would thrash and fail.',
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
