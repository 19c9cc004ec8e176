import { Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { DEFAULTS } from '../config/resolve-options';
import { searchCapacity, type LevelVerdict } from './capacity-search';
import { LevelPlanner } from './level-plan';
import {
  createPool,
  prepareRequest,
  RequestBudget,
  runLevel,
  shoot,
  type LevelRun,
  type PreparedRequest,
} from './load-generator';
import {
  ProbeAbortedError,
  ProbeBudgetError,
  ProbeDeadlineError,
  ProbeLevelOneError,
  ProbeLoadShortError,
  ProbeRejectedError,
  ProbeUnreachableError,
} from './probe.errors';
import type {
  LevelStats,
  ProbeResult,
  ProbeRunOptions,
  ProbeSettings,
  ProbeTarget,
} from './probe.types';

/**
 * A passing level whose load fell short (Little's law below 80 % of its concurrency) is
 * measured up to this many more times before the probe decides.
 */
export const LOAD_SHORT_RETRIES = 2;
/**
 * Below this share of its concurrency, a passing level is known to be wrong (the requests were
 * held before the handler) and the probe fails rather than publish it. Between this and 80 % the
 * level counts, with a warning: the client's own turnaround on a CPU-starved host costs up to
 * ~25 % at 32 senders.
 */
export const LOAD_SHORT_RATIO = 0.6;

/**
 * The rate a level serves with every one of its `concurrency` requests always in flight:
 * concurrency / mean latency (Little's law). The measured rate also loses the load generator's
 * own turnaround between a response and the next request (a few ms per request on a busy host,
 * ~5 % at 50 ms requests), which a balancer's queue hides: there the next request is already
 * waiting when a slot frees. The search compares levels by this rate, so that turnaround does
 * not push the choice above a pure queue's capacity. A level whose load fell short is caught by
 * the Little's-law check before it counts.
 */
export function servedRate(
  l: Pick<LevelStats, 'concurrency' | 'meanMs' | 'throughputRps'>,
): number {
  return l.meanMs > 0 ? Math.round((l.concurrency * 100_000) / l.meanMs) / 100 : l.throughputRps;
}

/** Client errors that say the request itself is wrong: more load cannot fix them. */
const REQUEST_ERRORS = new Set([400, 401, 403, 404, 405, 406, 410, 411, 413, 414, 415, 422]);

/** Probe settings with the documented defaults (the same as the module's). */
export function defaultProbeSettings(overrides: Partial<ProbeSettings> = {}): ProbeSettings {
  const latencyThresholdMs = overrides.latencyThresholdMs;
  const defined = Object.fromEntries(
    Object.entries(overrides).filter(([, v]) => v !== undefined),
  ) as Partial<ProbeSettings>;
  return {
    errorThreshold: DEFAULTS.errorThreshold,
    warmupMs: DEFAULTS.warmupMs,
    warmupLatencies: DEFAULTS.warmupLatencies,
    levelDurationMs: DEFAULTS.levelDurationMs,
    minSamples: DEFAULTS.minSamples,
    maxConcurrency: DEFAULTS.maxConcurrency,
    maxRequests: DEFAULTS.maxRequests,
    requestTimeoutMs: latencyThresholdMs !== undefined ? latencyThresholdMs * 5 : undefined,
    stopAtKnee: DEFAULTS.stopAtKnee,
    kneeMinGain: DEFAULTS.kneeMinGain,
    throughputShare: DEFAULTS.throughputShare,
    levelLatencies: DEFAULTS.levelLatencies,
    latencyFactor: DEFAULTS.latencyFactor,
    latencyFloorMs: DEFAULTS.latencyFloorMs,
    maxDurationMs: DEFAULTS.maxDurationMs,
    slowLatencyMs: DEFAULTS.slowLatencyMs,
    ...defined,
    latencyThresholdMs,
  };
}

/**
 * Measures the safe concurrency of one HTTP endpoint over real HTTP (undici).
 *
 * Steps up 1, 2, 4, … holding each level under sustained load after a warm-up, binary-searches
 * every gap between the last passing and the first failing level, and optionally stops at the
 * throughput knee. See `searchCapacity()` for the rules and `ProbeResult` for the report.
 *
 * Usable without Nest: `await new ProbeService().probe({ url, method, body }, { latencyThresholdMs })`.
 */
@Injectable()
export class ProbeService {
  /**
   * Probe one endpoint. Rejects with a `ProbeError` subclass when no capacity can be given
   * (target down, request rejected with 4xx, level 1 failing, budget exhausted, aborted).
   * Extra headers (e.g. the probe secret) go in `target.headers`.
   */
  async probe(target: ProbeTarget, options: ProbeRunOptions = {}): Promise<ProbeResult> {
    const { onLevel, signal: outer, slots, ...overrides } = options;
    const s = defaultProbeSettings(overrides);
    const req = { ...prepareRequest(target), slots };
    const label = `${req.method} ${target.url}`;
    const budget = new RequestBudget(s.maxRequests);
    const levels: LevelStats[] = [];
    const warnings: string[] = [];
    const startedAt = new Date();
    const t = performance.now();
    // One signal for the load: the caller's abort and the time budget.
    const load = new AbortController();
    const onOuter = (): void => load.abort();
    outer?.addEventListener('abort', onOuter);
    if (outer?.aborted) load.abort();
    let timeUp = false;
    const deadline = setTimeout(() => {
      timeUp = true;
      load.abort();
    }, s.maxDurationMs);
    const aborted = (): boolean => outer?.aborted === true;
    try {
      const firstMs = await this.preflight(req, label, s, budget, load.signal, aborted);
      if (timeUp) throw new ProbeDeadlineError(label, s.maxDurationMs, levels);
      const plans = new LevelPlanner(s, firstMs);

      let levelOneError: string | undefined;
      const measure = async (
        c: number,
        phase: LevelStats['phase'],
      ): Promise<LevelVerdict | null> => {
        if (aborted()) throw new ProbeAbortedError(label, levels);
        const once = async (p: LevelStats['phase']): Promise<LevelRun | null> => {
          if (budget.used >= budget.limit || timeUp) return null;
          const plan = plans.plan(c, levels);
          const r = await runLevel(req, c, p, s, plan, budget, load.signal);
          if (aborted()) throw new ProbeAbortedError(label, levels);
          // The time budget ran out inside the level: it proved nothing.
          if (timeUp || r.budgetOut) return null;
          levels.push(r.stats);
          onLevel?.(r.stats);
          return r;
        };
        let run = await once(phase);
        // A level that passed while its load fell short is measured again (bounded).
        let tries = 1;
        while (run && run.stats.pass && !run.stats.littleOk && tries <= LOAD_SHORT_RETRIES) {
          run = await once('repeat');
          tries++;
        }
        if (!run) return null;
        const l = run.stats;
        if (l.pass && l.littleConcurrency < LOAD_SHORT_RATIO * c) {
          throw new ProbeLoadShortError(label, c, l.littleConcurrency, tries, levels);
        }
        if (l.pass && !l.littleOk) {
          warnings.push(
            `level ${c}: the server saw ~${l.littleConcurrency} requests in flight (Little's law); ` +
              `the load generator may not have reached its level`,
          );
        }
        if (l.pass && !l.slow && l.requests < s.minSamples) {
          warnings.push(
            `level ${c}: only ${l.requests} responses measured (minSamples ${s.minSamples})`,
          );
        }
        if (c === 1) levelOneError = run.firstError;
        return {
          concurrency: c,
          pass: l.pass,
          marginal: l.failure === 'latency' && l.p50Ms <= (l.limitMs ?? Infinity),
          throughputRps: servedRate(l),
          meanMs: l.meanMs,
          settled: l.slow === true,
        };
      };

      const outcome = await searchCapacity(measure, s);
      if (outcome.levelOneFailed)
        this.failLevelOne(label, levels[levels.length - 1], levelOneError, s);
      if (outcome.capacity === null) {
        if (timeUp) throw new ProbeDeadlineError(label, s.maxDurationMs, levels);
        throw new ProbeBudgetError(label, s.maxRequests, levels);
      }
      let stopReason = outcome.stopReason;
      if (stopReason === 'budget' && timeUp) {
        stopReason = 'deadline';
        warnings.push(
          `the time budget (probe.maxDurationMs ${s.maxDurationMs} ms) ran out; the capacity is ` +
            `the largest level proven within the limits (raise probe.maxDurationMs to search further)`,
        );
      } else if (stopReason === 'budget') {
        warnings.push(
          `the request budget (${s.maxRequests}) ran out; the capacity is the largest level that passed`,
        );
      }

      const finishedAt = new Date();
      return {
        maxConcurrency: outcome.capacity,
        stopReason,
        target: label,
        levels,
        knee: outcome.knee,
        choice: outcome.choice,
        thresholds: plans.thresholds(levels),
        requests: budget.used,
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        durationMs: Math.round(performance.now() - t),
        warnings,
      };
    } finally {
      clearTimeout(deadline);
      outer?.removeEventListener('abort', onOuter);
    }
  }

  /**
   * One request before any load: a target that is down or a request the endpoint rejects
   * (404, 405, 422 …) fails here, clearly, without sending a level's worth of requests.
   */
  private async preflight(
    req: PreparedRequest,
    label: string,
    s: ProbeSettings,
    budget: RequestBudget,
    signal: AbortSignal,
    aborted: () => boolean,
  ): Promise<number> {
    if (aborted()) throw new ProbeAbortedError(label);
    budget.take();
    await req.slots?.startLevel(1);
    const pool = createPool(req, 1);
    const inFlight = new Set<AbortController>();
    const onAbort = (): void => inFlight.forEach((ac) => ac.abort());
    signal.addEventListener('abort', onAbort);
    try {
      const shot = await shoot(pool, req, s.requestTimeoutMs ?? s.maxDurationMs, inFlight);
      if (aborted()) throw new ProbeAbortedError(label);
      if (signal.aborted) throw new ProbeDeadlineError(label, s.maxDurationMs);
      if (shot.error) throw new ProbeUnreachableError(label, shot.error);
      if (shot.timedOut) {
        throw new ProbeUnreachableError(
          label,
          `no answer within ${Math.round(shot.ms)} ms (probe.requestTimeoutMs, by default 5 x ` +
            `latency_threshold_ms; unset latency_threshold_ms to let the limit follow the endpoint)`,
        );
      }
      if (REQUEST_ERRORS.has(shot.status)) throw new ProbeRejectedError(label, shot.status);
      return shot.ms;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await pool.destroy().catch(() => undefined);
    }
  }

  private failLevelOne(
    label: string,
    l: LevelStats,
    firstError: string | undefined,
    s: ProbeSettings,
  ): never {
    const codes = Object.keys(l.statuses).filter((k) => REQUEST_ERRORS.has(Number(k)));
    if (
      l.requests > 0 &&
      codes.length > 0 &&
      codes.reduce((n, k) => n + l.statuses[k], 0) === l.requests
    ) {
      throw new ProbeRejectedError(label, Number(codes[0]), [l]);
    }
    if (l.requests > 0 && (l.statuses.error ?? 0) === l.requests) {
      throw new ProbeUnreachableError(label, firstError ?? 'every request failed to connect');
    }
    const detail =
      l.failure === 'latency'
        ? `p99 ${l.p99Ms} ms > latency_threshold_ms ${s.latencyThresholdMs} (p50 ${l.p50Ms} ms); ` +
          `raise latency_threshold_ms, or remove it: by default the limit is relative to the ` +
          `endpoint's own unloaded latency`
        : `error rate ${(l.errorRate * 100).toFixed(1)} % > error_threshold ${(s.errorThreshold * 100).toFixed(1)} % ` +
          `(${describeStatuses(l.statuses)})`;
    throw new ProbeLevelOneError(label, l, detail);
  }
}

function describeStatuses(statuses: Record<string, number>): string {
  return Object.entries(statuses)
    .map(([k, n]) => `${n} x ${k}`)
    .join(', ');
}
