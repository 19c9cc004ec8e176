import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

export interface ChildApp {
  url: string;
  stderr(): string;
  close(): Promise<void>;
}

/**
 * Start `entry` (a TypeScript file) in its own Node process through ts-node, so libraries that
 * patch modules as Node loads them (OpenTelemetry instrumentations) see a real `require`; resolves
 * once it prints `LISTENING <port>`.
 */
export async function startChildApp(
  entry: string,
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<ChildApp> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', entry],
    {
      cwd: join(__dirname, '..', '..'),
      env: { ...process.env, ...env, TS_NODE_PROJECT: 'tsconfig.json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
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
