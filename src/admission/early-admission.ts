import { Inject, Injectable } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BALANCER_OPTIONS, PROBE_HEADER } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import type { Lease } from '../storage/capacity-store.interface';
import { AdmissionControl } from './admission-control';
import { admissionOf, attachAdmission } from './admission-state';
import { BalancerInvalidCostException, BalancerRejection } from './admission.exceptions';
import { hasBody } from './body-budget';
import { armBodyDeadline } from './body-deadline';
import { lingerAfterResponse } from './lingering-close';
import type { ResolvedPool } from './pool-registry';
import { ProbeTokens } from './probe-tokens';

/**
 * While an upload waits, its socket is not read (TCP flow control holds the body in the client),
 * so the server would not see the client leave. An interim `100 Continue` every so often makes
 * the kernel answer a gone client with a reset, which closes the response: the waiter leaves the
 * queue within about two periods. HTTP/1.1 clients must accept unexpected 1xx responses.
 */
const LIVENESS_MS = 1000;

/**
 * Admission before the body is read (Fastify's `preParsing` hook; on Express an application
 * step ahead of the body parsers). `bodyUnread` is `false` when a parser ran first anyway: the
 * body then counts against `maxQueueBytes` while it waits. Same gate, queue and rejections as the guard
 * (`AdmissionControl`); the admission is left on the raw request as an `AdmissionState`, where
 * the guard, interceptor and handler wrapper find it and do not admit again.
 */
@Injectable()
export class EarlyAdmission {
  constructor(
    private readonly control: AdmissionControl,
    private readonly tokens: ProbeTokens,
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
  ) {}

  /**
   * Admits `req` to `pool`: returns at once when a slot was free (or admission does not apply:
   * the probe's own requests), else a promise that resolves once the request holds a slot.
   * Throws (or rejects with) the 503/504/client-closed exception otherwise; a rejection of a
   * request whose body was not read is answered at once and then closes lingering
   * (`lingerAfterResponse`).
   */
  admit(
    pool: ResolvedPool,
    req: IncomingMessage,
    res: ServerResponse,
    bodyUnread: boolean,
  ): void | Promise<void> {
    if (admissionOf(req)) return;
    const probe = req.headers[PROBE_HEADER];
    if (probe !== undefined && this.tokens.accepts(pool.key, probe)) return;
    let admitted: Lease | Promise<Lease>;
    try {
      admitted = this.control.admit({ pool, req, rawReq: req, raw: res, bodyUnread });
    } catch (error) {
      throw answerUnread(error, req, res, this.options.bodyLingerMs);
    }
    if (!(admitted instanceof Promise)) return this.hold(admitted, req, res);
    return this.waitAlive(admitted, req, res).then(
      (lease) => this.hold(lease, req, res),
      (error: unknown) => {
        throw answerUnread(error, req, res, this.options.bodyLingerMs);
      },
    );
  }

  private hold(lease: Lease, req: IncomingMessage, res: ServerResponse): void {
    const state = attachAdmission(lease, req, res);
    if (hasBody(req.headers)) armBodyDeadline(req, res, state, this.options.bodyTimeout);
  }

  private async waitAlive(
    waiting: Promise<Lease>,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<Lease> {
    if (!hasBody(req.headers) || !acceptsPings(req, this.options.waitingPings)) return waiting;
    const tick = setInterval(() => {
      if (!res.headersSent && !res.destroyed && !req.complete) res.writeContinue();
    }, LIVENESS_MS);
    tick.unref();
    try {
      return await waiting;
    } finally {
      clearInterval(tick);
    }
  }
}

/**
 * Whether a waiting upload gets interim `100 Continue` pings (`waitingPings`). HTTP/1.1 clients
 * must accept unexpected 1xx answers, but undici (Node's `fetch`, User-Agent `node`; undici's
 * own `fetch`, `undici`; `undici.request`, no User-Agent) closes the connection with "bad
 * response" on an unrequested `100`, so `'auto'` leaves those clients out.
 */
export function acceptsPings(req: IncomingMessage, mode: 'auto' | 'always' | 'never'): boolean {
  if (mode === 'never' || req.httpVersion !== '1.1') return false;
  if (mode === 'always') return true;
  const agent = req.headers['user-agent'];
  return agent !== undefined && agent !== '' && !/^(node|undici)(\/|\s|$)/i.test(agent);
}

/**
 * A rejection of a request whose body is still in the client: the answer does not wait for the
 * body; the rest of the body is then discarded, within bounds, before the connection may close.
 */
function answerUnread(
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  lingerMs: number,
): unknown {
  const refused =
    error instanceof BalancerRejection || error instanceof BalancerInvalidCostException;
  if (refused && !req.complete && !res.headersSent) {
    lingerAfterResponse(req, res, lingerMs);
  }
  return error;
}
