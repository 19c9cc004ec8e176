import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { UploadAppConfig } from '../fixtures/upload-app';
import { spawnWorkers, type Worker } from '../redis/workers';
import type { ChildProcess } from 'node:child_process';

export const FIXTURE = 'test/fixtures/upload-app.ts';

/** Start the upload fixture in a child process of its own (its RSS is then its own). */
export async function startUploadServer(
  config: UploadAppConfig,
  registry: Set<ChildProcess>,
): Promise<Worker> {
  const [worker] = await spawnWorkers(
    FIXTURE,
    1,
    { UPLOAD_CONFIG: JSON.stringify(config) },
    registry,
  );
  return worker;
}

/** Resident set size of a process, in bytes, from /proc. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export interface ServerState {
  handler: { calls: number; running: number; peak: number };
  seen: Array<{
    id?: string;
    status: number;
    complete: boolean;
    bytesRead: number;
    connection?: string;
    retryAfter?: string;
    socketBytesRead?: number;
    closedAfterMs?: number;
  }>;
}

export async function serverState(url: string): Promise<ServerState> {
  return (await (await fetch(`${url}/test/state`)).json()) as ServerState;
}

export interface UploadResult {
  id: number;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The hash the server must return when it parsed the body intact. */
  expected: string;
}

/**
 * POST a JSON upload `{ id, salt, data }` whose `data` is `payload` (shared between uploads; the
 * salt makes each body distinct) to `path` on a connection of its own.
 */
export function upload(
  url: string,
  id: number,
  payload: Buffer,
  path = '/upload',
): Promise<UploadResult> {
  const salt = randomBytes(8).toString('hex');
  const head = Buffer.from(`{"id":${id},"salt":"${salt}","data":"`);
  const tail = Buffer.from('"}');
  const expected = createHash('sha256').update(salt).update(payload).digest('hex');
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        path,
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': head.length + payload.length + tail.length,
          'x-upload-id': String(id),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            id,
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            expected,
          }),
        );
      },
    );
    req.on('error', reject);
    req.write(head);
    req.write(payload);
    req.end(tail);
  });
}

/** The `Content-Length` that `upload(url, id, payload)` declares. */
export function uploadBytes(id: number, payload: Buffer): number {
  return Buffer.byteLength(`{"id":${id},"salt":"${'0'.repeat(16)}","data":"`) + payload.length + 2;
}

/** A JSON payload of `bytes` letters (valid inside a JSON string). */
export function payloadOf(bytes: number): Buffer {
  return Buffer.alloc(bytes, 'abcdefghijklmnopqrstuvwxyz');
}

export interface RawUpload {
  socket: Socket;
  /** Status line and headers of the first final (non-1xx) response. */
  response: Promise<{ status: number; headers: Record<string, string> }>;
  /** Bytes of body written into the socket so far. */
  sent(): number;
  /** Everything the server sent on the connection so far (latin1). */
  received(): string;
  /**
   * How the connection ended, once it has: `end` when the server closed it cleanly (FIN), else
   * the socket error's code (`ECONNRESET`, `EPIPE`); `at` is when (ms since the epoch).
   */
  ended(): { how: string; at: number } | undefined;
}

/**
 * An upload over a bare socket that declares `declared` body bytes and writes only `send` of
 * them (as fast as the connection takes them, or at `rate` bytes per second): to see what the
 * server answers before it has the body, and to cut the connection at will. `headers` are added
 * to the request's (e.g. `Connection: close`).
 */
export function rawUpload(
  url: string,
  opts: {
    id: string;
    declared: number;
    send: number;
    rate?: number;
    headers?: Record<string, string>;
  },
): RawUpload {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let sent = 0;
  let all = '';
  let text = '';
  let ended: { how: string; at: number } | undefined;
  const end = (how: string): void => {
    ended ??= { how, at: Date.now() };
  };
  socket.on('end', () => end('end'));
  socket.on('error', (e: NodeJS.ErrnoException) => end(e.code ?? e.message));
  socket.on('close', () => end('close'));
  const response = new Promise<{ status: number; headers: Record<string, string> }>(
    (resolve, reject) => {
      let answered = false;
      socket.on('data', (d: Buffer) => {
        all += d.toString('latin1');
        if (answered) return;
        text += d.toString('latin1');
        // Skip interim 1xx responses (the server's liveness checks while the upload waits).
        for (;;) {
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) return;
          const [line, ...rest] = text.slice(0, end).split('\r\n');
          const status = Number(line.split(' ')[1]);
          text = text.slice(end + 4);
          if (status >= 200) {
            const headers: Record<string, string> = {};
            for (const h of rest) {
              const i = h.indexOf(':');
              headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim();
            }
            answered = true;
            resolve({ status, headers });
            return;
          }
        }
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('connection closed without a response')));
    },
  );
  response.catch(() => undefined);
  socket.on('connect', () => {
    // A client that skips interim 1xx answers, as curl does (`waitingPings: 'auto'` sends them).
    const extra = Object.entries({ 'User-Agent': 'raw-upload/1.0', ...opts.headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(
      `POST /upload HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${opts.declared}\r\nX-Upload-Id: ${opts.id}\r\n${extra}\r\n`,
    );
    const chunk = Buffer.alloc(
      opts.rate ? Math.max(1, Math.floor(opts.rate / 10)) : 64 * 1024,
      'a',
    );
    if (opts.rate) {
      const timer = setInterval(() => {
        if (sent >= opts.send || socket.destroyed) return clearInterval(timer);
        const n = Math.min(chunk.length, opts.send - sent);
        socket.write(chunk.subarray(0, n));
        sent += n;
      }, 100);
      socket.once('close', () => clearInterval(timer));
      return;
    }
    const pump = (): void => {
      while (sent < opts.send && !socket.destroyed) {
        const n = Math.min(chunk.length, opts.send - sent);
        sent += n;
        if (!socket.write(chunk.subarray(0, n))) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  return { socket, response, sent: () => sent, received: () => all, ended: () => ended };
}
