import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpHealthCheck, loopbackTarget } from './http-health-check';

function listen(server: Server, where: number | string, host?: string): Promise<void> {
  return new Promise((resolve) => {
    if (typeof where === 'string') server.listen(where, resolve);
    else server.listen(where, host, resolve);
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('httpHealthCheck', () => {
  let status = 200;
  let delayMs = 0;
  let seen: Array<{ url?: string; method?: string; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url, method: req.method, headers: req.headers });
    setTimeout(() => res.writeHead(status).end('body'), delayMs);
  });
  const opts = { path: '/health', headers: { 'x-balancer-probe': 'secret' }, timeoutMs: 2000 };

  beforeAll(() => listen(server, 0, '127.0.0.1'));
  afterAll(() => close(server));
  beforeEach(() => {
    status = 200;
    delayMs = 0;
    seen = [];
  });

  it('counts a 2xx as healthy and sends the path and headers', async () => {
    status = 204;
    expect(await httpHealthCheck(server, opts)).toEqual({ ok: true, status: 204 });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ url: '/health', method: 'GET' });
    expect(seen[0].headers['x-balancer-probe']).toBe('secret');
  });

  it.each([301, 404, 500, 503])('counts HTTP %i as unhealthy and reports the status', async (s) => {
    status = s;
    expect(await httpHealthCheck(server, opts)).toEqual({ ok: false, status: s });
  });

  it('counts no answer within the timeout as unhealthy', async () => {
    delayMs = 1000;
    const result = await httpHealthCheck(server, { ...opts, timeoutMs: 50 });
    expect(result).toEqual({ ok: false, error: 'no answer within 50 ms' });
  });

  it('ends at once when aborted', async () => {
    delayMs = 5000;
    const abort = new AbortController();
    const pending = httpHealthCheck(server, { ...opts, signal: abort.signal });
    abort.abort();
    expect(await pending).toEqual({ ok: false, error: 'aborted' });
  });

  it('resolves null while the server is not listening', async () => {
    const idle = createServer();
    expect(loopbackTarget(idle)).toBeNull();
    expect(await httpHealthCheck(idle, opts)).toBeNull();
  });

  it('reaches a server bound to every interface over 127.0.0.1', async () => {
    const any = createServer((_req, res) => res.end('ok'));
    await listen(any, 0, '0.0.0.0');
    try {
      expect(loopbackTarget(any)).toMatchObject({ host: '127.0.0.1' });
      expect(await httpHealthCheck(any, opts)).toEqual({ ok: true, status: 200 });
    } finally {
      await close(any);
    }
  });

  it('reaches a server listening on a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'balancer-health-'));
    const unix = createServer((_req, res) => res.end('ok'));
    await listen(unix, join(dir, 'app.sock'));
    try {
      expect(loopbackTarget(unix)).toEqual({ socketPath: join(dir, 'app.sock') });
      expect(await httpHealthCheck(unix, opts)).toEqual({ ok: true, status: 200 });
    } finally {
      await close(unix);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
