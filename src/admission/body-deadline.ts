import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdmissionState } from './admission-state';

const BODY_TIMEOUT_BODY = (seconds: number): string =>
  JSON.stringify({
    statusCode: 408,
    error: 'Request Timeout',
    message: `The request body did not arrive within ${seconds} s of the request being admitted`,
    reason: 'body_timeout',
  });

/**
 * The slot is for the work, not the upload: once a request admitted before its body was read
 * holds a slot, its body must arrive within `seconds`, or the client gets 408 (with
 * `Connection: close`) and the slot goes back, so a client trickling its body cannot keep a slot
 * idle while others wait. The deadline ends when the body has been read or the handler started
 * (a handler that streams the body itself is doing the work).
 *
 * The 408 is written on the raw response, like a server timeout: the request never reached
 * Nest's pipeline, and the body parser that was reading it then sees the connection close.
 */
export function armBodyDeadline(
  req: IncomingMessage,
  res: ServerResponse,
  state: AdmissionState,
  seconds: number,
): void {
  if (seconds <= 0 || req.complete) return;
  const done = (): void => {
    clearTimeout(timer);
    req.off('end', done);
    res.off('close', done);
  };
  const timer = setTimeout(() => {
    done();
    if (req.complete || state.entered || res.headersSent || res.destroyed) return;
    res.statusCode = 408;
    res.setHeader('Connection', 'close');
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(BODY_TIMEOUT_BODY(seconds));
  }, seconds * 1000);
  timer.unref();
  req.once('end', done);
  res.once('close', done);
}
