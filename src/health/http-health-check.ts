import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';

export interface HttpCheckResult {
  ok: boolean;
  /** HTTP status, when an answer arrived. */
  status?: number;
  /** Why no answer arrived (timeout, connection error). */
  error?: string;
}

export interface HttpCheckOptions {
  path: string;
  headers: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
}

type RequestTarget = Pick<http.RequestOptions, 'host' | 'port' | 'socketPath'>;

/** Where to reach a listening server from inside its own process; `null` when not listening. */
export function loopbackTarget(server: http.Server): RequestTarget | null {
  if (!server.listening) return null;
  const address = server.address() as AddressInfo | string | null;
  if (address === null) return null;
  if (typeof address === 'string') return { socketPath: address };
  // A server bound to every interface is reached over IPv4 loopback (dual-stack `::` accepts it).
  const unspecified = address.address === '0.0.0.0' || address.address === '::';
  return { host: unspecified ? '127.0.0.1' : address.address, port: address.port };
}

/**
 * GET `path` from this process's own server. Healthy = any 2xx within the timeout. Resolves
 * `null` while the server is not listening (nothing to check yet, or a test server between
 * requests). Never rejects.
 */
export function httpHealthCheck(
  server: http.Server,
  options: HttpCheckOptions,
): Promise<HttpCheckResult | null> {
  const target = loopbackTarget(server);
  if (target === null) return Promise.resolve(null);
  // Our own certificate is checked by the clients that reach us; on loopback we only need an answer.
  const tls = server instanceof TlsServer;
  const request = tls ? https.request : http.request;
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: HttpCheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const req = request({
      ...target,
      method: 'GET',
      path: options.path,
      headers: { ...options.headers, connection: 'close' },
      // A fresh connection per check: nothing idles open to hold up server.close() at shutdown.
      agent: false,
      ...(tls ? { rejectUnauthorized: false } : {}),
    });
    const timer = setTimeout(() => {
      done({ ok: false, error: `no answer within ${options.timeoutMs} ms` });
      req.destroy();
    }, options.timeoutMs);
    const onAbort = (): void => {
      done({ ok: false, error: 'aborted' });
      req.destroy();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => done({ ok: status >= 200 && status < 300, status }));
      res.on('error', (err) => done({ ok: false, status, error: err.message }));
    });
    req.on('error', (err) => done({ ok: false, error: err.message }));
    req.end();
  });
}
