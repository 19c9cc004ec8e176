import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { spawnNode } from '../harness/child-build';

/** A worker process (a small Nest app on its own port) sharing the suite's Redis. */
export interface Worker {
  readonly url: string;
  readonly pid: number;
  readonly output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Send a signal without waiting for an exit (SIGSTOP / SIGCONT). */
  signal(signal: NodeJS.Signals): void;
}

/**
 * Spawn `count` processes of `fixture` (compiled once per run, plain node: see
 * test/harness/child-build.ts) with `env`, and wait
 * for each to print `READY <port>`. Every process started is recorded in `registry` so the
 * suite's afterAll can kill it even when a test failed half-way.
 */
export async function spawnWorkers(
  fixture: string,
  count: number,
  env: Record<string, string>,
  registry: Set<ChildProcess>,
  timeoutMs = 60_000,
): Promise<Worker[]> {
  return Promise.all(
    Array.from({ length: count }, () => spawnWorker(fixture, env, registry, timeoutMs)),
  );
}

async function spawnWorker(
  fixture: string,
  env: Record<string, string>,
  registry: Set<ChildProcess>,
  timeoutMs: number,
): Promise<Worker> {
  const child = spawnNode(fixture, [], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  registry.add(child);
  child.once('exit', () => registry.delete(child));
  let output = '';
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`worker did not start in ${timeoutMs} ms: ${output}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      const m = /READY (\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before it was ready: ${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    output: () => output,
    signal: (signal: NodeJS.Signals) => void child.kill(signal),
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}

/** Kill every process still in `registry` (afterAll, also after failures). */
export async function killAll(registry: Set<ChildProcess>): Promise<void> {
  await Promise.all(
    [...registry].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }),
  );
}

/** GET a URL and return status and JSON body (or null). Network errors become status 0. */
export async function get(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: unknown }> {
  try {
    const res = await fetch(url, init);
    const text = await res.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, body };
  } catch {
    return { status: 0, body: null };
  }
}
