import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * Child processes of a benchmark run. Every fixture is a Node process forked with an IPC
 * channel: it reports `{ ready, port }` when listening and exits by itself when the channel
 * closes, so even a benchmark killed with SIGKILL leaves nothing behind. Native binaries
 * (haproxy, redis-server) run under `fixtures/guard.ts`, which gives them the same property.
 */

const FIXTURES = join(__dirname, '..', 'fixtures');
const live = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Last resort: whatever is still running when this process exits is killed by pid.
  process.on('exit', () => {
    for (const child of live) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
}

export interface Fixture {
  name: string;
  child: ChildProcess;
  port: number;
  /** Last lines of the child's output, for error messages. */
  tail(): string;
}

export interface ForkOptions {
  env?: Record<string, string>;
  /** Give up waiting for `ready` after this long (a busy shared box is slow to start ts-node). @default 180000 */
  readyTimeoutMs?: number;
  /** Print the child's output as it comes (debugging). */
  verbose?: boolean;
}

/** Fork `fixtures/<file>` under ts-node and wait for its `{ ready: true, port }` message. */
export async function startFixture(
  name: string,
  file: string,
  args: string[],
  opts: ForkOptions = {},
): Promise<Fixture> {
  hookExit();
  // BENCH_CPU_PROF=<dir>: V8 CPU profiles of the Nest apps, to see where their time goes.
  const prof =
    process.env.BENCH_CPU_PROF && file === 'app.ts'
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : [];
  const child = fork(join(FIXTURES, file), args, {
    execArgv: ['-r', 'ts-node/register/transpile-only', ...prof],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    const text = chunk.toString();
    if (opts.verbose) process.stderr.write(`[${name}] ${text}`);
    lines.push(...text.split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const fixture: Fixture = { name, child, port: 0, tail: () => lines.slice(-12).join('\n') };

  const timeoutMs = opts.readyTimeoutMs ?? 180_000;
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: not ready after ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.on('message', (msg: { ready?: boolean; port?: number }) => {
      if (msg?.ready && typeof msg.port === 'number') {
        clearTimeout(timer);
        resolve(msg.port);
      }
    });
    // 'close' (not 'exit'): the child's output is fully read by then, for the message.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited during startup (${signal ?? `code ${code}`})`));
    });
  });
  try {
    fixture.port = await ready;
  } catch (err) {
    await stopFixture(fixture);
    const detail = fixture.tail();
    throw new Error(`${(err as Error).message}${detail ? `\n${detail}` : ''}`);
  }
  return fixture;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopFixture(f: Fixture, graceMs = 3000): Promise<void> {
  const { child } = f;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Fixtures of one scenario, stopped together (in reverse start order) even on error. */
export class FixtureGroup {
  private readonly fixtures: Fixture[] = [];

  async start(name: string, file: string, args: string[], opts?: ForkOptions): Promise<Fixture> {
    const f = await startFixture(name, file, args, opts);
    this.fixtures.push(f);
    return f;
  }

  /** Name and pid of every running fixture, in start order. */
  list(): Array<{ name: string; pid: number | undefined }> {
    return this.fixtures.map((f) => ({ name: f.name, pid: f.child.pid }));
  }

  async stopAll(): Promise<void> {
    for (const f of this.fixtures.reverse()) await stopFixture(f);
    this.fixtures.length = 0;
  }
}

/** A free TCP port on 127.0.0.1 (for binaries that cannot report the port they picked). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * CPU time (user + system, ms) used so far by `pid` and its direct children (the binary under
 * a guard), from /proc. `null` where /proc is not available.
 */
export function cpuTimeMs(pid: number | undefined): number | null {
  if (!pid) return null;
  const ticks = (p: string): number => {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  try {
    let total = ticks(String(pid));
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const c of children ? children.split(/\s+/) : []) {
      try {
        total += ticks(c);
      } catch {
        // exited meanwhile
      }
    }
    return (total * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ): 100 on every Linux we know of. */
const CLOCK_TICKS = 100;

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
export function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Machine-wide TCP counters that explain lost or slow connections (from /proc/net/netstat). */
export function tcpCounters(): Record<string, number> | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const names = lines.find((l) => l.startsWith('TcpExt:'))?.split(/\s+/) ?? [];
    const values = lines.filter((l) => l.startsWith('TcpExt:'))[1]?.split(/\s+/) ?? [];
    const want = [
      'ListenOverflows',
      'ListenDrops',
      'TCPAbortOnData',
      'TCPAbortOnClose',
      'TCPTimeouts',
    ];
    const out: Record<string, number> = {};
    for (const w of want) {
      const i = names.indexOf(w);
      if (i > 0) out[w] = Number(values[i]);
    }
    return out;
  } catch {
    return null;
  }
}
