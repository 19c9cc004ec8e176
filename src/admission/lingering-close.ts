import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * How long the rest of a rejected request's body is read and thrown away once the response has
 * been sent, before the server closes the connection, by default (`bodyLingerMs`). It is the
 * time a client still pushing its body is given to read the answer: closing a socket with
 * unread bytes in its receive buffer makes the kernel send a reset, and a reset that reaches the
 * client first erases the answer.
 */
export const LINGER_MS = 2000;

/**
 * How many bytes of a rejected request's body are read and thrown away at most. Past it the
 * server stops reading (TCP flow control holds the client) and closes at `lingerMs`; the bound
 * keeps a flood of rejected large uploads from costing the server their bandwidth and CPU.
 */
export const LINGER_BYTES = 1024 * 1024;

/**
 * A lingering close (RFC 9112, section 9.6) for a request rejected before its body was read: the
 * rejection is answered at once, the rest of the body is read and discarded (never buffered),
 * bounded by `lingerMs` after the response and `LINGER_BYTES`, and only then is the connection
 * closed, so the client reads the answer instead of a connection reset.
 *
 * - The body ends within the bounds: the connection stays open for the next request when the
 *   client keeps connections alive; when it asked to close (`Connection: close`, or HTTP/1.0
 *   without keep-alive), the server closes it then, with a FIN after the whole body was read.
 * - Otherwise the socket is destroyed `lingerMs` after the response was sent.
 *
 * Node's HTTP server destroys the socket right after a response that closes the connection, with
 * the body unread, so a client that asked to close gets `Connection: keep-alive` on this one
 * response: Node leaves the socket to this function, which closes it as the client asked. (An
 * answer without `Content-Length` to HTTP/1.0 still closes at once, the close being its end;
 * Express and Fastify send these JSON answers with a length.)
 *
 * Call before the response is written: reading starts at once (the answer does not wait for
 * it), and must, because once the response is sent Node drops an unconsumed body without
 * emitting it, and the bytes could not be counted.
 */
export function lingerAfterResponse(
  req: IncomingMessage,
  res: ServerResponse,
  lingerMs: number = LINGER_MS,
): void {
  const socket = req.socket;
  const closeAfter = closeRequested(req);
  if (closeAfter) res.setHeader('Connection', 'keep-alive');
  let discarded = 0;
  let finished = false;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;

  const onData = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded >= LINGER_BYTES) req.pause();
  };
  const stop = (): void => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    res.off('finish', onFinish);
    socket.off('close', stop);
  };
  const done = (): void => {
    stop();
    if (closeAfter) socket.end();
  };
  const onEnd = (): void => {
    ended = true;
    if (finished) done();
  };
  const onFinish = (): void => {
    finished = true;
    if (ended) return done();
    timer = setTimeout(() => {
      stop();
      socket.destroy();
    }, lingerMs);
    timer.unref();
  };

  req.on('data', onData);
  req.once('end', onEnd);
  res.once('finish', onFinish);
  socket.once('close', stop);
  req.resume();
}

/** Whether the client asked for the connection to close after this request. */
function closeRequested(req: IncomingMessage): boolean {
  const options = String(req.headers.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((o) => o.trim());
  if (options.includes('close')) return true;
  return req.httpVersion === '1.0' && !options.includes('keep-alive');
}
