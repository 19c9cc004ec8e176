import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { waitFor } from '../../test/harness/wait-for';
import { LINGER_BYTES, LINGER_MS, lingerAfterResponse } from './lingering-close';

/** What the server saw of the one connection a test makes. */
interface Seen {
  bytesRead?: number;
  closedAt?: number;
  answeredAt?: number;
}

/** A plain Node server that rejects every request with 503 at once and lingers. */
async function rejectingServer(
  seen: Seen,
  lingerMs = LINGER_MS,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.socket.once('close', () => {
      seen.bytesRead = req.socket.bytesRead;
      seen.closedAt = Date.now();
    });
    res.once('finish', () => (seen.answeredAt = Date.now()));
    lingerAfterResponse(req, res, lingerMs);
    res.statusCode = 503;
    res.setHeader('Retry-After', '1');
    // As Express and Fastify do: without it an HTTP/1.0 answer ends with the close.
    res.setHeader('Content-Length', '4');
    res.end('busy');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A client over a bare socket: sends `head`, then `body` bytes; records what comes back. */
function client(port: number, head: string, body: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  const state = { text: '', ended: undefined as string | undefined };
  socket.on('data', (d: Buffer) => (state.text += d.toString('latin1')));
  socket.on('end', () => (state.ended ??= 'end'));
  socket.on('error', (e: NodeJS.ErrnoException) => (state.ended ??= e.code ?? e.message));
  socket.on('connect', () => {
    socket.write(head);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < body && !socket.destroyed) {
        const n = Math.min(chunk.length, body - sent);
        sent += n;
        if (!socket.write(chunk.subarray(0, n))) return void socket.once('drain', pump);
      }
    };
    pump();
  });
  return { socket, state };
}

describe('lingerAfterResponse', () => {
  let server: Server;
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('an HTTP/1.0 client (no keep-alive) gets its 503, then a FIN once its body is read', async () => {
    const seen: Seen = {};
    const started = await rejectingServer(seen);
    server = started.server;
    const body = 300 * 1024;
    const c = client(started.port, `POST / HTTP/1.0\r\nContent-Length: ${body}\r\n\r\n`, body);
    await waitFor(() => c.state.ended !== undefined, LINGER_MS + 5000, 'the server to close');
    expect(c.state.text).toMatch(/^HTTP\/1\.1 503 /);
    expect(c.state.ended).toBe('end');
    await waitFor(() => seen.closedAt !== undefined);
    // The whole body was read before the close, and the close came without waiting LINGER_MS.
    expect(seen.bytesRead!).toBeGreaterThan(body);
    expect(seen.closedAt! - seen.answeredAt!).toBeLessThan(LINGER_MS);
  });

  it('stops reading at LINGER_BYTES and closes lingerMs after the answer', async () => {
    const seen: Seen = {};
    const lingerMs = 500; // shortened (bodyLingerMs); the default is LINGER_MS
    const started = await rejectingServer(seen, lingerMs);
    server = started.server;
    const body = 8 * LINGER_BYTES;
    const c = client(
      started.port,
      `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body}\r\n\r\n`,
      body,
    );
    await waitFor(() => c.state.ended !== undefined, lingerMs + 5000, 'the server to close');
    expect(c.state.text).toMatch(/^HTTP\/1\.1 503 /);
    await waitFor(() => seen.closedAt !== undefined);
    expect(seen.bytesRead!).toBeGreaterThanOrEqual(LINGER_BYTES);
    expect(seen.bytesRead!).toBeLessThan(LINGER_BYTES + 256 * 1024);
    expect(seen.closedAt! - seen.answeredAt!).toBeGreaterThanOrEqual(lingerMs - 10);
    c.socket.destroy();
  });
});
