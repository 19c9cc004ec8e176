import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { SampleBuffer, summarizeLatencies } from './latency-stats';
import { InFlightStarts, p99Broken, steady } from './early-verdict';
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

/** How one level is run and judged (decided by the probe from what it has measured so far). */
export interface LevelPlan {
  /** Latency limit, ms (`Infinity`: none, level 1 of the relative rule). */
  limitMs: number;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  /**
   * Paced by latency: a request takes a sizeable part of `levelDurationMs`. The warm-up ends at
   * the level's first response (no warm-up at all when `coldStarted`), every sender then sends
   * one measured request (level 1: two) and the level ends when they are answered. Once more
   * than half of the measured requests are known to break the limits (answered over the limit
   * or with an error, or still running past the limit) no more are sent: the verdict is clear.
   * The requests in flight are still waited for, so the next level does not start on a busy
   * server.
   */
  slow: boolean;
  /** With `slow`: the endpoint was just called (preflight), skip the warm-up. */
  warm?: boolean;
  /** Unmeasured load before a fast level's window, ms. @default `ProbeSettings.warmupMs` */
  warmupMs?: number;
}

/** Measured requests a slow level sends: one per sender, at least two. */
export function slowQuota(concurrency: number): number {
  return Math.max(2, concurrency);
}

/**
 * Hold `concurrency` requests in flight: a warm-up (not measured), then a measured window that
 * lasts `levelDurationMs` and until `minSamples` responses are in (at most
 * `levelDurationMs + requestTimeoutMs`). Both scale with the endpoint's latency: the warm-up
 * lasts until every sender has completed two requests (so the level runs at its full
 * concurrency before measuring) and the window at least `levelLatencies` mean latencies of the
 * level, so a level of 300 ms requests sees many waves of completions, not three. Every request
 * started in the window is measured, also when it ends after the window (no survivor bias);
 * throughput counts responses completed in the window. The warm-up lasts `plan.warmupMs`
 * (scaled to the expected latency, see `warmupFor`). Warm-up and window end early once at
 * least `minSamples` responses are in and more than half of them failed (error or over the
 * latency limit), and the window once the p99 is known to break the limit (`p99Broken`;
 * measured requests running past the limit count as over it): such a level cannot pass and
 * would only burn budget. A `slow` level runs by other rules, see `LevelPlan.slow`.
 */
export async function runLevel(
  req: PreparedRequest,
  concurrency: number,
  phase: LevelPhase,
  s: ProbeSettings,
  plan: LevelPlan,
  budget: RequestBudget,
  signal: AbortSignal,
): Promise<LevelRun> {
  await req.slots?.startLevel(concurrency);
  const pool = createPool(req, concurrency);
  const inFlight = new Set<AbortController>();
  const onAbort = (): void => inFlight.forEach((ac) => ac.abort());
  signal.addEventListener('abort', onAbort);
  const limit = plan.limitMs;
  const slow = plan.slow;
  const warmupMs = plan.warmupMs ?? s.warmupMs;

  const levelStart = performance.now();
  // measured window start; a slow level sets it at its first response
  let t0 = slow ? (plan.warm ? levelStart : Infinity) : levelStart + warmupMs;
  let t1 = Infinity; // measured window end (stop time)
  let stopping = false;
  let budgetOut = false;
  let early = false;
  let firstError: string | undefined;

  let warmupDone = 0;
  let warmupCut = false;
  let warmupBad = 0;
  let warmupMsSum = 0;
  let measuredMsSum = 0;
  let measuredSqSum = 0;
  const latencies = new SampleBuffer();
  let measuredDone = 0;
  let measuredBad = 0;
  let errors = 0;
  let timeouts = 0;
  let inWindow = 0;
  const statuses: Record<string, number> = {};
  // Slow levels: start times of the measured requests in flight, and Little's law over the time
  // every sender had a request in flight (from t0 to the first measured response).
  const measuredStarts = new Set<number>();
  let measuredSent = 0;
  let firstMeasuredAt = Infinity;
  let clientInFlight = 0;
  let inFlightArea = 0;
  let areaSince = levelStart;
  const track = (now: number, delta: number): void => {
    if (slow && now > t0 && Number.isFinite(t0)) {
      const from = Math.max(areaSince, t0);
      const to = Math.min(now, firstMeasuredAt);
      if (to > from) inFlightArea += clientInFlight * (to - from);
    }
    areaSince = now;
    clientInFlight += delta;
  };

  const stop = (now: number): void => {
    if (stopping) return;
    stopping = true;
    t1 = now;
  };

  /** Slow levels: more than half of the measured requests already break the limits. */
  const clearlyFails = (now: number): boolean => {
    let over = measuredBad;
    for (const started of measuredStarts) if (now - started > limit) over++;
    const total = measuredDone + measuredStarts.size;
    return total > 0 && over * 2 > total;
  };
  /** Fast levels: every request in flight, to count the measured ones past the limit. */
  const running = new InFlightStarts();
  /**
   * Fast levels: the verdict is a failure whatever the rest of the window brings. Measured
   * requests still running past the limit count as over it: a level of long latencies fails
   * without waiting for them (they are still waited for, and measured, before the next level).
   */
  const fastFails = (now: number): boolean => {
    if (!Number.isFinite(t0) || now < t0) return false;
    const live = running.measured(t0, now, limit);
    const total = measuredDone + live.running;
    const over = measuredBad + live.overdue;
    if (total < s.minSamples || over === 0) return false;
    if (over * 2 > total) return true;
    const mean = measuredDone > 0 ? measuredMsSum / measuredDone : 0;
    const span = Math.max(s.levelDurationMs, s.levelLatencies * mean);
    return (
      measuredDone >= s.minSamples && p99Broken(over, measuredDone, now - t0, span, concurrency)
    );
  };
  const watch = Number.isFinite(limit)
    ? setInterval(
        () => {
          const now = performance.now();
          if (!stopping && (slow ? clearlyFails(now) : fastFails(now))) {
            early = true;
            stop(now);
          }
        },
        slow ? Math.max(20, Math.min(1000, limit / 20)) : Math.max(5, Math.min(100, limit / 10)),
      )
    : undefined;

  const sender = async (): Promise<void> => {
    while (!stopping && !signal.aborted) {
      if (slow && Number.isFinite(t0) && measuredSent >= slowQuota(concurrency)) return;
      if (!budget.take()) {
        budgetOut = true;
        stop(performance.now());
        return;
      }
      const started = performance.now();
      const isMeasured = slow && started >= t0;
      if (isMeasured) {
        measuredSent++;
        measuredStarts.add(started);
        // The quota is sent: the window closes (its requests are still measured).
        if (measuredSent >= slowQuota(concurrency)) stop(started);
      }
      track(started, +1);
      const token = running.add(started);
      const shot = await shoot(pool, req, plan.timeoutMs, inFlight);
      running.delete(token);
      if (signal.aborted) return;
      const now = performance.now();
      track(now, -1);
      if (isMeasured) measuredStarts.delete(started);
      // Judged at completion: the warm-up may have been extended while this request ran.
      const measured = started >= t0;
      const isError = shot.status === 0 || shot.status >= 400;
      const bad = isError || shot.ms > limit;
      if (shot.error && !firstError) firstError = shot.error;
      if (now >= t0 && now <= t1) inWindow++;
      if (!measured) {
        warmupDone++;
        warmupMsSum += shot.ms;
        if (bad) warmupBad++;
        if (slow) {
          // The level's first response ends the warm-up: from here every new request meets
          // the level's steady state (a queue has formed, or the backend runs c at once).
          if (!Number.isFinite(t0)) t0 = now;
          continue;
        }
        // A level that fails most requests in its warm-up starts measuring at once, and its
        // warm-up is not extended any more (its verdict is near).
        if (warmupDone >= s.minSamples && warmupBad * 2 > warmupDone) {
          if (now < t0) t0 = now;
          warmupCut = true;
        }
        // Slow requests: keep warming up until every sender has been through two of them
        // (at most two mean latencies beyond the plan's warm-up). Nothing measured yet, so
        // moving the window's start only drops warm-up completions counted in it.
        else if (!warmupCut && !stopping && measuredDone === 0 && warmupDone < 2 * concurrency) {
          const mean = warmupMsSum / warmupDone;
          const next = Math.min(now + mean, levelStart + warmupMs + 2 * mean);
          if (next > t0) {
            t0 = next;
            inWindow = 0;
          }
        }
        continue;
      }
      if (slow && !Number.isFinite(firstMeasuredAt)) firstMeasuredAt = now;
      measuredDone++;
      measuredMsSum += shot.ms;
      measuredSqSum += shot.ms * shot.ms;
      latencies.push(shot.ms);
      const key = shot.timedOut ? 'timeout' : shot.status === 0 ? 'error' : String(shot.status);
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (isError) errors++;
      if (shot.timedOut) timeouts++;
      if (bad) measuredBad++;
      if (stopping) continue;
      if (slow) {
        if (clearlyFails(now)) {
          early = true;
          stop(now);
        }
        continue;
      }
      const elapsed = now - t0;
      const mean = measuredMsSum / measuredDone;
      const span = Math.max(s.levelDurationMs, s.levelLatencies * mean);
      if (fastFails(now)) {
        early = true;
        stop(now);
      } else if (
        measuredDone >= s.minSamples &&
        elapsed >= Math.max(s.levelDurationMs / 4, s.levelLatencies * mean) &&
        measuredBad === 0 &&
        steady(mean, measuredSqSum / measuredDone, measuredDone)
      ) {
        // The verdict is clear early: every response within the limits and a mean latency
        // known to within 1 % (standard error). A stall spreads the latencies and keeps the
        // level running to its full window.
        stop(now);
      } else if (elapsed >= span && measuredDone >= s.minSamples) {
        stop(now);
      } else if (elapsed >= span + plan.timeoutMs) {
        stop(now);
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: concurrency }, () => sender()));
  } finally {
    if (watch) clearInterval(watch);
    signal.removeEventListener('abort', onAbort);
    await pool.destroy().catch(() => undefined);
  }

  const end = Number.isFinite(t1) ? t1 : performance.now();
  const sum = summarizeLatencies(latencies.values());
  let windowMs: number;
  let throughputRps: number;
  let windowEnd: number;
  if (slow) {
    // Little's law: the mean number in flight while every sender had a request out, over the
    // mean latency. No need to wait for many waves of completions.
    windowEnd = Math.min(firstMeasuredAt, performance.now());
    windowMs = Number.isFinite(t0) ? Math.max(0, windowEnd - t0) : 0;
    const meanInFlight = windowMs > 0 ? inFlightArea / windowMs : 0;
    throughputRps = sum.mean > 0 ? (meanInFlight * 1000) / sum.mean : 0;
    inWindow = measuredDone;
  } else {
    windowEnd = end;
    windowMs = Math.max(0, end - t0);
    throughputRps = windowMs > 0 ? (inWindow * 1000) / windowMs : 0;
  }
  // Slots real requests held while a probe sender waited for them were in flight too.
  const others = windowMs > 0 ? (req.slots?.occupiedByOthers(t0, windowEnd) ?? 0) / windowMs : 0;
  const littleConcurrency = (throughputRps * sum.mean) / 1000 + others;
  const errorRate = measuredDone > 0 ? errors / measuredDone : 1;
  const failure =
    measuredDone === 0 || errorRate > s.errorThreshold
      ? ('errors' as const)
      : sum.p99 > limit
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
    durationMs: Math.round(performance.now() - levelStart),
    completions: inWindow,
    pass: failure === undefined,
    failure,
    early,
    limitMs: Number.isFinite(limit) ? round(limit) : null,
    slow,
  };
  const minimum = slow ? 1 : s.minSamples;
  return { stats, budgetOut: budgetOut && measuredDone < minimum, firstError };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
