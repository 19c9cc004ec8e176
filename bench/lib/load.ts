import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { summarize, type LatencySummary } from './stats';

/**
 * Load generators for the benchmarks and the demo driver: closed loop (N clients, each sends
 * its next request when the previous one is answered) and open loop (arrivals on a clock,
 * Poisson or fixed rate, whatever the server does). Loopback only, bounded in requests, in
 * requests in flight and in time: a run always ends, and every request it sent is accounted
 * for (answered, or counted as lost with the reason).
 */

export interface LoadTarget {
  /** Base URLs; several are served round-robin per request (a minimal front for N workers). */
  urls: string[];
  path: string;
  method: 'GET' | 'POST';
  body?: unknown;
  /** Extra request headers (e.g. a tenant key), sent with every request. */
  headers?: Record<string, string>;
}

export interface LoadHooks {
  /** Called as each request is sent. */
  onSend?: () => void;
  /**
   * Called with each answered request: status, latency in ms, the base URL it went to, and
   * whether it was sent inside the measured window.
   */
  onResponse?: (status: number, ms: number, url: string, measured: boolean) => void;
  /** Called with each request that got no HTTP answer. */
  onLost?: (reason: string, url: string, measured: boolean) => void;
}

interface CommonOptions extends LoadHooks {
  target: LoadTarget;
  /** Length of the measured window, ms. */
  durationMs: number;
  /** Unmeasured load before the window (same load, results dropped), ms. @default 0 */
  warmupMs?: number;
  /** A request unanswered after this long is aborted and counted lost. */
  requestTimeoutMs: number;
  /** After the window, how long answers to requests already sent are awaited. */
  drainTimeoutMs: number;
  /** Hard cap on requests sent (warm-up included). */
  maxRequests: number;
  /** Stop early (e.g. Ctrl-C in the demo driver). */
  signal?: AbortSignal;
}

export interface ClosedLoopOptions extends CommonOptions {
  /** Number of clients; a function of elapsed ms ramps it (the demo driver). */
  clients: number | ((elapsedMs: number) => number);
}

export interface OpenLoopOptions extends CommonOptions {
  /** Arrivals per second. */
  rate: number;
  /** `poisson`: exponential gaps; `fixed`: evenly spaced. @default 'poisson' */
  arrivals?: 'poisson' | 'fixed';
  /** Requests in flight beyond which a new arrival is not sent (counted `notSent`). */
  maxInFlight: number;
}

export interface LoadResult {
  /** Measured window, seconds. */
  durationS: number;
  /** Requests sent in the window. */
  sent: number;
  /** Answered requests of the window by status. */
  byStatus: Record<string, number>;
  ok: number;
  /** 2xx answers completed within the window, per second of window. */
  goodput: number;
  /** Latency of the window's 2xx answers (including ones that arrived during the drain). */
  latency: LatencySummary;
  /** Latency of the window's other answers, per status (how long a refusal took to arrive). */
  latencyByStatus: Record<string, LatencySummary>;
  /**
   * Latency of the window's rejections: 503 and 504 together (what an admission layer answers
   * when it turns a request away: queue full, shed, queue wait expired, unhealthy).
   */
  rejectedLatency: LatencySummary;
  /** Window requests that were never answered (error, client timeout, unanswered at drain end). */
  lost: number;
  lostByReason: Record<string, number>;
  /** Open loop: arrivals skipped because `maxInFlight` requests were already out. */
  notSent: number;
  /** Offered rate (open loop) or client count (closed loop). */
  offered: string;
}

/** Only loopback: these generators are built to overload a server, never someone else's. */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) {
    throw new Error(`refusing to send load to ${host}: only 127.0.0.1, ::1 or localhost`);
  }
}

/** Statuses that count as a rejection by an admission layer (see `LoadResult.rejectedLatency`). */
export const REJECT_STATUSES = [503, 504] as const;

class Recorder {
  readonly byStatus: Record<string, number> = {};
  readonly lostByReason: Record<string, number> = {};
  readonly latencies: number[] = [];
  /** Latencies of non-2xx answers, per status. */
  readonly otherLatencies: Record<string, number[]> = {};
  sent = 0;
  okInWindow = 0;
  notSent = 0;
  private pending = new Set<AbortController>();

  constructor(
    private readonly windowStart: number,
    private readonly windowEnd: number,
    private readonly hooks: LoadHooks,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  /** Abort every request still out; each is then counted lost by its own completion. */
  abortAll(): void {
    for (const c of this.pending) c.abort(new Error('unanswered at drain end'));
  }

  async send(
    agent: Agent,
    url: string,
    target: LoadTarget,
    timeoutMs: number,
    payload: string | undefined,
  ): Promise<void> {
    const startedAt = performance.now();
    const measured = startedAt >= this.windowStart && startedAt < this.windowEnd;
    if (measured) this.sent++;
    this.hooks.onSend?.();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new Error('client timeout')), timeoutMs);
    this.pending.add(ctl);
    try {
      const res = await request(url + target.path, {
        dispatcher: agent,
        method: target.method,
        body: payload,
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...target.headers,
        },
        signal: ctl.signal,
      });
      await res.body.dump({ limit: 1 << 20 });
      const ms = performance.now() - startedAt;
      this.hooks.onResponse?.(res.statusCode, ms, url, measured);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      // Goodput counts successes completed inside the window, whenever they were sent, so the
      // window's edges bias no scenario; statuses and latencies belong to requests sent in it.
      const doneAt = startedAt + ms;
      if (ok && doneAt >= this.windowStart && doneAt < this.windowEnd) this.okInWindow++;
      if (!measured) return;
      const key = String(res.statusCode);
      this.byStatus[key] = (this.byStatus[key] ?? 0) + 1;
      if (ok) this.latencies.push(ms);
      else (this.otherLatencies[key] ??= []).push(ms);
    } catch (err) {
      const reason = lostReason(err, ctl.signal);
      this.hooks.onLost?.(reason, url, measured);
      if (measured) this.lostByReason[reason] = (this.lostByReason[reason] ?? 0) + 1;
    } finally {
      clearTimeout(timer);
      this.pending.delete(ctl);
    }
  }

  result(durationMs: number, offered: string): LoadResult {
    const lost = Object.values(this.lostByReason).reduce((a, b) => a + b, 0);
    const latencyByStatus: Record<string, LatencySummary> = {};
    for (const [status, samples] of Object.entries(this.otherLatencies)) {
      latencyByStatus[status] = summarize(samples);
    }
    const rejected = REJECT_STATUSES.flatMap((s) => this.otherLatencies[String(s)] ?? []);
    return {
      durationS: durationMs / 1000,
      sent: this.sent,
      byStatus: this.byStatus,
      ok: this.latencies.length,
      goodput: this.okInWindow / (durationMs / 1000),
      latency: summarize(this.latencies),
      latencyByStatus,
      rejectedLatency: summarize(rejected),
      lost,
      lostByReason: this.lostByReason,
      notSent: this.notSent,
      offered,
    };
  }
}

function lostReason(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const r: unknown = signal.reason;
    return r instanceof Error ? r.message : 'aborted';
  }
  const e = err as { code?: string; message?: string };
  return e.code ?? e.message ?? 'error';
}

function newAgent(requestTimeoutMs: number): Agent {
  // No connection cap per origin: the generator must never be the bottleneck it measures
  // (the seed's probe topped out at its client's pool size).
  return new Agent({
    connections: null,
    pipelining: 1,
    headersTimeout: requestTimeoutMs + 1000,
    bodyTimeout: requestTimeoutMs + 1000,
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function drain(
  rec: Recorder,
  pending: Set<Promise<void>>,
  drainTimeoutMs: number,
): Promise<void> {
  const all = Promise.allSettled([...pending]);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>(
    (r) => (timer = setTimeout(() => r('expired'), drainTimeoutMs)),
  );
  const outcome = await Promise.race([all.then(() => 'done' as const), expired]);
  clearTimeout(timer);
  if (outcome === 'expired') {
    rec.abortAll();
    await all;
  }
}

/** An internal stop signal following the caller's, free of the 10-listener warning (one per client). */
function stopSignal(outer?: AbortSignal): AbortSignal {
  const ctl = new AbortController();
  setMaxListeners(0, ctl.signal);
  if (outer?.aborted) ctl.abort();
  else outer?.addEventListener('abort', () => ctl.abort(), { once: true });
  return ctl.signal;
}

function payloadOf(target: LoadTarget): string | undefined {
  return target.body === undefined ? undefined : JSON.stringify(target.body);
}

/** N clients, each sending its next request as soon as the previous one is answered. */
export async function runClosedLoop(opts: ClosedLoopOptions): Promise<LoadResult> {
  opts.target.urls.forEach(assertLoopback);
  const agent = newAgent(opts.requestTimeoutMs);
  const payload = payloadOf(opts.target);
  const t0 = performance.now();
  const warmup = opts.warmupMs ?? 0;
  const windowEnd = t0 + warmup + opts.durationMs;
  const rec = new Recorder(t0 + warmup, windowEnd, opts);
  const signal = stopSignal(opts.signal);
  const clientsAt = typeof opts.clients === 'number' ? () => opts.clients as number : opts.clients;
  const maxClients = typeof opts.clients === 'number' ? opts.clients : Number.POSITIVE_INFINITY;
  let seq = 0;
  let total = 0;
  const pending = new Set<Promise<void>>();

  const client = async (index: number): Promise<void> => {
    while (performance.now() < windowEnd && total < opts.maxRequests && !signal.aborted) {
      // A ramped client waits until the ramp reaches it.
      if (index >= clientsAt(performance.now() - t0)) {
        await sleep(50, signal);
        continue;
      }
      total++;
      const url = opts.target.urls[seq++ % opts.target.urls.length];
      const p = rec.send(agent, url, opts.target, opts.requestTimeoutMs, payload);
      pending.add(p);
      await p;
      pending.delete(p);
    }
  };

  const count = Number.isFinite(maxClients)
    ? maxClients
    : Math.ceil(clientsAt(opts.durationMs + warmup));
  const clients = Array.from({ length: count }, (_, i) => client(i));
  // Clients stop sending at the window's end; their last requests are drained with a deadline.
  await sleep(windowEnd - performance.now(), signal);
  await drain(rec, pending, opts.drainTimeoutMs);
  await Promise.all(clients);
  await agent.close().catch(() => undefined);
  const offered =
    typeof opts.clients === 'number' ? `${opts.clients} clients` : `up to ${count} clients`;
  return rec.result(opts.durationMs, offered);
}

/** Arrivals at `rate` per second (Poisson by default), sent whatever the server's state. */
export async function runOpenLoop(opts: OpenLoopOptions): Promise<LoadResult> {
  opts.target.urls.forEach(assertLoopback);
  const agent = newAgent(opts.requestTimeoutMs);
  const payload = payloadOf(opts.target);
  const t0 = performance.now();
  const warmup = opts.warmupMs ?? 0;
  const windowEnd = t0 + warmup + opts.durationMs;
  const rec = new Recorder(t0 + warmup, windowEnd, opts);
  const pending = new Set<Promise<void>>();
  const meanGapMs = 1000 / opts.rate;
  let next = t0;
  let seq = 0;
  let total = 0;

  while (next < windowEnd && total < opts.maxRequests && !opts.signal?.aborted) {
    const now = performance.now();
    if (next > now) {
      await sleep(next - now, opts.signal);
      continue;
    }
    // Timers are coarse: send every arrival that is due, then schedule the next one.
    while (next <= now && next < windowEnd && total < opts.maxRequests) {
      total++;
      if (rec.inFlight >= opts.maxInFlight) {
        if (next >= t0 + warmup) rec.notSent++;
      } else {
        const url = opts.target.urls[seq++ % opts.target.urls.length];
        const p = rec.send(agent, url, opts.target, opts.requestTimeoutMs, payload);
        pending.add(p);
        void p.then(() => pending.delete(p));
      }
      const gap = opts.arrivals === 'fixed' ? meanGapMs : -Math.log(1 - Math.random()) * meanGapMs;
      next += gap;
    }
  }
  await drain(rec, pending, opts.drainTimeoutMs);
  await agent.close().catch(() => undefined);
  return rec.result(
    opts.durationMs,
    `${Math.round(opts.rate)} req/s ${opts.arrivals ?? 'poisson'}`,
  );
}
