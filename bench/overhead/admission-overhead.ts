/**
 * Admission overhead: a trivial route plain, with a no-op guard and a no-op interceptor (what
 * Nest's guard and interceptor machinery alone cost), and @Balanced() with the memory and the
 * Redis store (cap never reached; guard admission and `admission: 'interceptor'`), on Express and Fastify, side by side in one run.
 * Each server runs in its own process; autocannon drives it from this one. Rounds interleave
 * the variants so machine noise hits them alike; the median round is reported.
 *
 *   npm run bench -- overhead            (part of npm run bench)
 *   ts-node --transpile-only bench/overhead/admission-overhead.ts
 *   (BENCH_SECONDS, BENCH_ROUNDS, BENCH_VARIANTS and BENCH_PLATFORMS narrow a run)
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { BenchSection } from '../section';

const ROOT = join(__dirname, '..', '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 32;

interface Sample {
  rps: number;
  p99: number;
  /** The server process's CPU time (user + system) per request served, in microseconds. */
  cpuUs: number;
}

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on Linux). */
const TICKS_PER_S = 100;

/** CPU time (user + system) a process has used so far, in microseconds, from /proc. */
function cpuTimeUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at index 2 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks * 1e6) / TICKS_PER_S;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  return port;
}

/** Start a private redis-server (or use REDIS_URL). */
async function startRedis(): Promise<{ url: string; stop(): void }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: () => undefined };
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('Ready to accept connections')) resolve();
    });
  });
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

async function startServer(
  variant: string,
  platform: string,
  redisUrl: string,
): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      join(__dirname, 'server.ts'),
      variant,
      platform,
      redisUrl,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.on('exit', (code) =>
      reject(new Error(`${variant}/${platform} server exited with ${code}`)),
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
  return { port, child };
}

async function load(
  server: { port: number; child: ChildProcess },
  seconds: number,
): Promise<Sample> {
  const { port } = server;
  const pid = server.child.pid as number;
  const cpuBefore = cpuTimeUs(pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/hello`,
    connections: CONNECTIONS,
    duration: seconds,
  });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`non-2xx ${result.non2xx}, errors ${result.errors} on port ${port}`);
  }
  const cpu = cpuTimeUs(pid) - cpuBefore;
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    cpuUs: cpu / Math.max(1, result.requests.total),
  };
}

const fmt = (x: number | null): string => (x === null ? '-' : x.toFixed(3));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runOverheadBench(): Promise<BenchSection> {
  const redis = await startRedis();
  const variants = (
    process.env.BENCH_VARIANTS ??
    'plain,guard,noop,memory,memory-interceptor,redis,redis-interceptor'
  ).split(',');
  const rows: Array<{
    platform: string;
    variant: string;
    rps: number;
    p99: number;
    ratio: number;
    ratioNoop: number | null;
    ratioGuard: number | null;
    cpuUs: number;
  }> = [];
  try {
    for (const platform of (process.env.BENCH_PLATFORMS ?? 'express,fastify').split(',')) {
      const servers = new Map<string, { port: number; child: ChildProcess }>();
      try {
        for (const v of variants) servers.set(v, await startServer(v, platform, redis.url));
        // Warm up every server (JIT, connection pools, Redis scripts).
        for (const v of variants) await load(servers.get(v)!, 1);
        const samples = new Map<string, Sample[]>(variants.map((v) => [v, []]));
        for (let r = 0; r < ROUNDS; r++) {
          for (const v of variants) samples.get(v)!.push(await load(servers.get(v)!, SECONDS));
        }
        const plainRps = median(samples.get('plain')!.map((s) => s.rps));
        const noop = samples.get('noop');
        const noopRps = noop ? median(noop.map((s) => s.rps)) : null;
        const guard = samples.get('guard');
        const guardRps = guard ? median(guard.map((s) => s.rps)) : null;
        for (const v of variants) {
          const s = samples.get(v)!;
          const rps = median(s.map((x) => x.rps));
          rows.push({
            platform,
            variant: v,
            rps,
            p99: median(s.map((x) => x.p99)),
            ratio: rps / plainRps,
            ratioNoop: noopRps ? rps / noopRps : null,
            ratioGuard: guardRps ? rps / guardRps : null,
            cpuUs: median(s.map((x) => x.cpuUs)),
          });
        }
      } finally {
        for (const { child } of servers.values()) child.kill('SIGTERM');
      }
    }
  } finally {
    redis.stop();
  }
  const markdown = [
    `Trivial GET route, ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SECONDS} s, median round.`,
    '',
    "`noop` is the same route with an interceptor that does nothing: the cost of Nest's",
    'interceptor machinery itself, which any interceptor (ours included) pays. `guard` is the',
    'same route with a guard that lets everything through, for comparison. `memory`/`redis` are',
    "@Balanced() with the default guard admission; `*-interceptor` with `admission: 'interceptor'`.",
    "`CPU µs/req` is the server process's CPU time (user + system, from /proc) over the requests",
    'it served in the round: far less moved by a shared machine than req/s.',
    '',
    '| adapter | variant | req/s | p99 (ms) | CPU µs/req | ratio vs plain | ratio vs guard | ratio vs noop interceptor |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.platform} | ${r.variant} | ${r.rps.toFixed(0)} | ${r.p99.toFixed(1)} | ${r.cpuUs.toFixed(0)} | ${r.ratio.toFixed(3)} | ${fmt(r.ratioGuard)} | ${fmt(r.ratioNoop)} |`,
    ),
  ].join('\n');
  return { title: 'Admission overhead (cap never reached)', markdown, data: rows };
}

if (require.main === module) {
  runOverheadBench().then(
    (s) => console.log(`## ${s.title}\n\n${s.markdown}`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
