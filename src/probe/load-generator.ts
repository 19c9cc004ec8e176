import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { SampleBuffer, summarizeLatencies } from './latency-stats';
import type { ProbeSlots } from './interim-admission';
import type { LevelPhase, LevelStats, ProbeSettings, ProbeTarget } from './probe.types';

/** A request ready to send many times. */
export interface PreparedRequest {
  origin: string;
  path: string;
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  socketPath?: string;
  insecureTls?: boolean;
  /** The startup probe: slots shared with the pool's real requests (see `ProbeSlots`). */
  slots?: ProbeSlots;
}

export function prepareRequest(
  target: ProbeTarget,
  extraHeaders: Record<string, string> = {},
): PreparedRequest {
  const url = new URL(target.url);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...(target.headers ?? {}), ...extraHeaders })) {
    headers[k.toLowerCase()] = String(v);
  }
  let body: string | Uint8Array | undefined;
  if (target.body !== undefined && target.body !== null) {
    if (typeof target.body === 'string' || target.body instanceof Uint8Array) {
      body = target.body;
    } else {
      body = JSON.stringify(target.body);
      headers['content-type'] ??= 'application/json';
    }
  }
  return {
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method: (target.method ?? 'GET').toUpperCase(),
    headers,
    body,
    socketPath: target.socketPath,
    insecureTls: target.insecureTls,
  };
}

/** Counts requests against the probe budget. */
export class RequestBudget {
  used = 0;
  constructor(readonly limit: number) {}
  take(): boolean {
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }
}

/** One response as the probe saw it. */
export interface Shot {
  /** HTTP status, or 0 for a connection error / timeout. */
  status: number;
  ms: number;
  timedOut: boolean;
  /** Message of a connection-level error. */
  error?: string;
}

export function createPool(req: PreparedRequest, connections: number): Pool {
  return new Pool(req.origin, {
    connections,
    pipelining: 1,
    // Our own timer decides timeouts (counted as errors at the timeout value).
    headersTimeout: 0,
    bodyTimeout: 0,
    socketPath: req.socketPath,
    connect: req.insecureTls ? { rejectUnauthorized: false } : undefined,
  });
}

/** Send one request and read its whole body. Never throws. */
export async function shoot(
  pool: Pool,
  req: PreparedRequest,
  timeoutMs: number,
  inFlight: Set<AbortController>,
): Promise<Shot> {
  const ac = new AbortController();
  inFlight.add(ac);
  let leave: (() => void) | undefined;
  if (req.slots) {
    // Waiting for a slot is not part of the request's latency: the clock starts after it.
    try {
      leave = await req.slots.enter(ac.signal);
    } catch {
      inFlight.delete(ac);
      return { status: 0, ms: 0, timedOut: false, error: 'aborted while waiting for a slot' };
    }
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, timeoutMs);
  const start = performance.now();
  try {
    const res = await pool.request({
      path: req.path,
      method: req.method as 'GET',
      headers: req.headers,
      body: req.body,
      signal: ac.signal,
    });
    // Drain the body: the latency of a request is the time until its last byte.
    for await (const _chunk of res.body) {
      // discard
    }
    return { status: res.statusCode, ms: performance.now() - start, timedOut: false };
  } catch (err) {
    if (timedOut) return { status: 0, ms: timeoutMs, timedOut: true };
    return { status: 0, ms: performance.now() - start, timedOut: false, error: describeError(err) };
  } finally {
    clearTimeout(timer);
    inFlight.delete(ac);
    leave?.();
  }
}

export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  const message = e?.message ?? e?.cause?.message ?? String(err);
  return code && !message.includes(code) ? `${code} ${message}` : message;
}

export interface LevelRun {
  stats: LevelStats;
  /** The budget ran out before the level had its samples: the level is inconclusive. */
  budgetOut: boolean;
  /** First connection error seen, for diagnostics. */
  firstError?: string;
}

/**
 * Hold `concurrency` requests in flight: a warm-up (not measured), then a measured window that
 * lasts `levelDurationMs` and until `minSamples` responses are in (at most
 * `levelDurationMs + requestTimeoutMs`). Both scale with the endpoint's latency: the warm-up
 * lasts until every sender has completed two requests (so the level runs at its full
 * concurrency before measuring) and the window at least `levelLatencies` mean latencies of the
 * level, so a level of 300 ms requests sees many waves of completions, not three. Every request started in the window is measured, also
 * when it ends after the window (no survivor bias); throughput counts responses completed in
 * the window. Warm-up and window end early once at least `minSamples` responses are in and more
 * than half of them failed (error or over the latency limit): such a level cannot pass and
 * would only burn budget.
 */
export async function runLevel(
  req: PreparedRequest,
  concurrency: number,
  phase: LevelPhase,
  s: ProbeSettings,
  budget: RequestBudget,
  signal: AbortSignal,
): Promise<LevelRun> {
  await req.slots?.startLevel(concurrency);
  const pool = createPool(req, concurrency);
  const inFlight = new Set<AbortController>();
  const onAbort = (): void => inFlight.forEach((ac) => ac.abort());
  signal.addEventListener('abort', onAbort);

  const levelStart = performance.now();
  let t0 = levelStart + s.warmupMs; // measured window start
  let t1 = Infinity; // measured window end (stop time)
  let stopping = false;
  let budgetOut = false;
  let early = false;
  let firstError: string | undefined;

  let warmupDone = 0;
  let warmupBad = 0;
  let warmupMsSum = 0;
  let measuredMsSum = 0;
  const latencies = new SampleBuffer();
  let measuredDone = 0;
  let measuredBad = 0;
  let errors = 0;
  let timeouts = 0;
  let inWindow = 0;
  const statuses: Record<string, number> = {};

  const stop = (now: number): void => {
    if (stopping) return;
    stopping = true;
    t1 = now;
  };

  const sender = async (): Promise<void> => {
    while (!stopping && !signal.aborted) {
      if (!budget.take()) {
        budgetOut = true;
        stop(performance.now());
        return;
      }
      const started = performance.now();
      const shot = await shoot(pool, req, s.requestTimeoutMs, inFlight);
      if (signal.aborted) return;
      const now = performance.now();
      // Judged at completion: the warm-up may have been extended while this request ran.
      const measured = started >= t0;
      const isError = shot.status === 0 || shot.status >= 400;
      const bad = isError || shot.ms > s.latencyThresholdMs;
      if (shot.error && !firstError) firstError = shot.error;
      if (now >= t0 && now <= t1) inWindow++;
      if (!measured) {
        warmupDone++;
        warmupMsSum += shot.ms;
        if (bad) warmupBad++;
        // A level that fails most requests in its warm-up starts measuring at once.
        if (warmupDone >= s.minSamples && warmupBad * 2 > warmupDone && now < t0) t0 = now;
        // Slow requests: keep warming up until every sender has been through two of them
        // (at most two mean latencies beyond `warmupMs`). Nothing measured yet, so moving the
        // window's start only drops warm-up completions counted in it.
        else if (measuredDone === 0 && warmupDone < 2 * concurrency) {
          const mean = warmupMsSum / warmupDone;
          const next = Math.min(now + mean, levelStart + s.warmupMs + 2 * mean);
          if (next > t0) {
            t0 = next;
            inWindow = 0;
          }
        }
        continue;
      }
      measuredDone++;
      measuredMsSum += shot.ms;
      latencies.push(shot.ms);
      const key = shot.timedOut ? 'timeout' : shot.status === 0 ? 'error' : String(shot.status);
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (isError) errors++;
      if (shot.timedOut) timeouts++;
      if (bad) measuredBad++;
      if (stopping) continue;
      const elapsed = now - t0;
      const span = Math.max(s.levelDurationMs, s.levelLatencies * (measuredMsSum / measuredDone));
      if (measuredDone >= s.minSamples && measuredBad * 2 > measuredDone) {
        early = true;
        stop(now);
      } else if (elapsed >= span && measuredDone >= s.minSamples) {
        stop(now);
      } else if (elapsed >= span + s.requestTimeoutMs) {
        stop(now);
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: concurrency }, () => sender()));
  } finally {
    signal.removeEventListener('abort', onAbort);
    await pool.destroy().catch(() => undefined);
  }

  const end = Number.isFinite(t1) ? t1 : performance.now();
  const windowMs = Math.max(0, end - t0);
  const sum = summarizeLatencies(latencies.values());
  const throughputRps = windowMs > 0 ? (inWindow * 1000) / windowMs : 0;
  // Slots real requests held while a probe sender waited for them were in flight too.
  const others = windowMs > 0 ? (req.slots?.occupiedByOthers(t0, end) ?? 0) / windowMs : 0;
  const littleConcurrency = (throughputRps * sum.mean) / 1000 + others;
  const errorRate = measuredDone > 0 ? errors / measuredDone : 1;
  const failure =
    measuredDone === 0 || errorRate > s.errorThreshold
      ? ('errors' as const)
      : sum.p99 > s.latencyThresholdMs
        ? ('latency' as const)
        : undefined;
  const stats: LevelStats = {
    concurrency,
    phase,
    requests: measuredDone,
    warmupRequests: warmupDone,
    errors,
    timeouts,
    errorRate,
    statuses,
    p50Ms: round(sum.p50),
    p99Ms: round(sum.p99),
    maxMs: round(sum.max),
    meanMs: round(sum.mean),
    throughputRps: round(throughputRps),
    littleConcurrency: round(littleConcurrency),
    littleOk: littleConcurrency >= 0.8 * concurrency,
    windowMs: Math.round(windowMs),
    durationMs: Math.round(end - levelStart),
    completions: inWindow,
    pass: failure === undefined,
    failure,
    early,
  };
  return { stats, budgetOut: budgetOut && measuredDone < s.minSamples, firstError };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
