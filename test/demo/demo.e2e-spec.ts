import { createServer, type Server } from 'node:net';
import { spawnNode } from '../harness/child-build';

/** Run the demo's main.ts with `PORT`; resolves when it exits. */
function runDemo(port: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnNode('examples/demo/main.ts', [], {
    env: { ...process.env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('the demo (npm start)', () => {
  let taken: Server;
  let port: number;
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    port = (taken.address() as { port: number }).port;
  });
  afterAll(() => new Promise((r) => taken.close(r)));

  it('says the port is taken and how to pick another, without a stack, exit 1', async () => {
    const { code, stderr } = await runDemo(String(port));
    expect(code).toBe(1);
    expect(stderr).toContain(`port ${port} on 127.0.0.1 is already in use (EADDRINUSE)`);
    expect(stderr).toMatch(/PORT=\d+ npm start/);
    expect(stderr).not.toMatch(/^\s+at /m);
  }, 120_000);

  it('rejects a PORT that is not a port', async () => {
    const { code, stderr } = await runDemo('eighty');
    expect(code).toBe(1);
    expect(stderr).toContain('PORT must be a port number (0-65535), got "eighty"');
  }, 120_000);
});
