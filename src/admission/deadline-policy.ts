import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { DeadlineFunction, DeadlineSettings } from '../config/deadline-options';
import { parseDeadlineHeader } from './deadline-header';
import { deadlineAt } from './request-deadline';

/**
 * How one pool reads a request's deadline (`ResolvedPool.deadline`; absent when the pool has no
 * `deadline` / `deadlineHeader`, so admission pays nothing). A malformed header value or a
 * function that throws means no deadline (the request is served as without one) and is logged
 * once per pool.
 */
export class DeadlinePolicy {
  private warned = false;

  private constructor(
    readonly pool: string,
    private readonly header: string | undefined,
    private readonly fn: DeadlineFunction | undefined,
    private readonly logger: Logger | undefined,
  ) {}

  /** The policy of `pool` from its merged settings, or `undefined` when they set no source. */
  static from(pool: string, settings: DeadlineSettings, log: boolean): DeadlinePolicy | undefined {
    if (settings.deadline === undefined && settings.deadlineHeader === undefined) return undefined;
    const logger = log ? new Logger('BalancerModule') : undefined;
    return new DeadlinePolicy(
      pool,
      settings.deadlineHeader?.toLowerCase(),
      settings.deadline,
      logger,
    );
  }

  /** The request's deadline on the monotonic clock (`performance.now()` ms), or `undefined`. */
  deadlineOf(req: IncomingMessage, now: number = performance.now()): number | undefined {
    if (this.header !== undefined) {
      const value = req.headers[this.header];
      if (value === undefined) return undefined;
      const ms = parseDeadlineHeader(value);
      if (ms === null) this.warn(`a malformed ${this.header} header (${preview(value)})`);
      return ms === null ? undefined : deadlineAt(ms, now);
    }
    try {
      return deadlineAt(this.fn?.(req), now);
    } catch (error) {
      this.warn(
        `a deadline function that threw (${error instanceof Error ? error.message : String(error)})`,
      );
      return undefined;
    }
  }

  private warn(what: string): void {
    if (this.warned) return;
    this.warned = true;
    this.logger?.warn(
      `pool "${this.pool}": ${what}; such requests have no deadline (logged once per pool)`,
    );
  }
}

/** A header value cut for a log line (it is request text: untrusted). */
function preview(value: string | string[]): string {
  const text = JSON.stringify(Array.isArray(value) ? value[0] : value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
