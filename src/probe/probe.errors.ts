import type { LevelStats } from './probe.types';

/** Machine-readable cause of a failed probe. */
export type ProbeErrorReason =
  | 'unreachable'
  | 'rejected'
  | 'level_one_failed'
  | 'load_short'
  | 'budget'
  | 'deadline'
  | 'no_path'
  | 'aborted';

/**
 * A probe that could not produce a capacity. The message says why and what to change; the
 * balancer never turns a failed probe into a silent capacity of 1.
 */
export class ProbeError extends Error {
  constructor(
    readonly reason: ProbeErrorReason,
    message: string,
    /** Levels measured before the failure (may be empty). */
    readonly levels: LevelStats[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The target did not answer at all (connection refused, DNS, TLS …). */
export class ProbeUnreachableError extends ProbeError {
  constructor(target: string, cause: string) {
    super('unreachable', `${target} is unreachable: ${cause}`);
  }
}

/** The target answered a client error (404, 405, 422 …) that more load cannot fix. */
export class ProbeRejectedError extends ProbeError {
  constructor(
    target: string,
    readonly status: number,
    levels: LevelStats[] = [],
  ) {
    super(
      'rejected',
      `${target} answered ${status} to the probe request; check the endpoint's method, path, ` +
        `headers and body (probe settings) - more load cannot fix a ${status}`,
      levels,
    );
  }
}

/** Even one request at a time broke the error or latency limit. */
export class ProbeLevelOneError extends ProbeError {
  constructor(target: string, level: LevelStats, detail: string) {
    super('level_one_failed', `${target} fails at concurrency 1: ${detail}`, [level]);
  }
}

/**
 * A level passed, but the server saw far fewer requests in flight than the probe sent
 * (Little's law), on every try: the number would be wrong, so none is given.
 */
export class ProbeLoadShortError extends ProbeError {
  constructor(
    target: string,
    concurrency: number,
    seen: number,
    tries: number,
    levels: LevelStats[],
  ) {
    super(
      'load_short',
      `${target}: at concurrency ${concurrency} the server saw only ~${seen} requests in flight ` +
        `(Little's law: throughput x mean latency), in ${tries} tries; the load did not reach the ` +
        `endpoint, so no capacity is published. Requests are held before the handler (several ` +
        `workers on one port with the memory store? use the Redis store) or the probing process ` +
        `is starved of CPU`,
      levels,
    );
  }
}

/** `probe.maxRequests` ran out before any level passed. */
export class ProbeBudgetError extends ProbeError {
  constructor(target: string, budget: number, levels: LevelStats[]) {
    super(
      'budget',
      `${target}: the probe budget of ${budget} requests ran out before any level passed; ` +
        `raise probe.maxRequests or shorten probe.levelDurationMs`,
      levels,
    );
  }
}

/** `probe.maxDurationMs` ran out before any level passed. */
export class ProbeDeadlineError extends ProbeError {
  constructor(target: string, maxDurationMs: number, levels: LevelStats[] = []) {
    super(
      'deadline',
      `${target}: the probe's time budget of ${maxDurationMs} ms ran out before any level ` +
        `passed; raise probe.maxDurationMs, or set a manual capacity`,
      levels,
    );
  }
}

/** A parameterized route without a concrete `probe.path`. */
export class ProbeNoPathError extends ProbeError {
  constructor(pool: string) {
    super(
      'no_path',
      `${pool} has route parameters; give a concrete path to probe (endpoints["${pool}"].path ` +
        `or @Balanced({ probe: { path } }))`,
    );
  }
}

/** The probe was cancelled (application shutdown, Ctrl-C, an AbortSignal). */
export class ProbeAbortedError extends ProbeError {
  constructor(target: string, levels: LevelStats[] = []) {
    super('aborted', `${target}: probe aborted`, levels);
  }
}
