import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { spawnNode } from '../harness/child-build';

export interface ChildApp {
  url: string;
  stderr(): string;
  close(): Promise<void>;
}

/**
 * Start `entry` (a TypeScript file, compiled once per run: test/harness/child-build.ts) in its
 * own Node process, so libraries that
 * patch modules as Node loads them (OpenTelemetry instrumentations) see a real `require`; resolves
 * once it prints `LISTENING <port>`.
 */
export async function startChildApp(
  entry: string,
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<ChildApp> {
  const child: ChildProcess = spawnNode(entry, [], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child app did not listen within ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child app exited with ${code} before listening:\n${err}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stderr: () => err,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
