import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { CostSettings } from '../config/cost-options';
import { costProblem, wholeUnits } from '../storage/cost-units';
import type { AdmissionEvents } from './admission-events';
import { BalancerInvalidCostException } from './admission.exceptions';
import type { ResolvedPool } from './pool-registry';

/** A header value as units: digits with an optional fraction, nothing else (no sign, no hex). */
const UNITS_TEXT = /^\d+(\.\d+)?$/;

/**
 * The cost settings of one pool, resolved at startup (`ResolvedPool.cost`; absent when the pool
 * has none, so admission pays nothing for them). Reads a request's units from the user's
 * function or a trusted header. A request whose units cannot be read is answered 400
 * `invalid_cost` before anything is reserved: a missing or malformed header, or a function that
 * throws or returns anything but a positive finite number up to `MAX_COST`. Counting such a
 * request as 1 unit could let a large request past the cap it exists to keep.
 */
export class CostPolicy {
  readonly maxQueueCost?: number;
  private readonly read?: (req: IncomingMessage) => unknown;
  private readonly what: string;
  private failed = false;

  private constructor(
    readonly pool: string,
    private readonly settings: CostSettings,
    private readonly logger?: Logger,
  ) {
    this.maxQueueCost = settings.maxQueueCost;
    const header = settings.costHeader?.toLowerCase();
    if (settings.cost) {
      this.read = settings.cost;
      this.what = 'the cost function';
    } else if (header !== undefined) {
      this.read = (req) => parseHeader(req.headers[header]);
      this.what = `the ${header} header`;
    } else {
      this.what = 'the cost';
    }
  }

  /** The policy of `pool` from its merged settings, or `undefined` when they turn nothing on. */
  static from(pool: string, settings: CostSettings, log: boolean): CostPolicy | undefined {
    if (
      settings.cost === undefined &&
      settings.costHeader === undefined &&
      settings.maxQueueCost === undefined
    ) {
      return undefined;
    }
    return new CostPolicy(pool, settings, log ? new Logger('BalancerModule') : undefined);
  }

  /**
   * The request's units (whole, >= 1); throws `BalancerInvalidCostException` (400), counted as
   * an `invalid_cost` admission event when `events` is given.
   */
  unitsOf(req: IncomingMessage, events?: AdmissionEvents): number {
    if (!this.read) return 1;
    let value: unknown;
    try {
      value = this.read(req);
    } catch (error) {
      this.logOnce(`threw (${error instanceof Error ? error.message : String(error)})`);
      events?.emit(this.pool, 'invalid_cost', 0);
      throw new BalancerInvalidCostException(`The cost of this request could not be read`);
    }
    const problem = value instanceof HeaderProblem ? value.problem : costProblem(value);
    if (problem !== null) {
      if (this.settings.cost) this.logOnce(`returned a value that ${problem}`);
      events?.emit(this.pool, 'invalid_cost', 0);
      throw new BalancerInvalidCostException(
        `The cost of this request (${this.what}) ${problem}: it must be a positive number of units`,
      );
    }
    return wholeUnits(value as number);
  }

  /**
   * Units of the probe's own request (its configured headers, method and path), so a probed
   * concurrency becomes a capacity in units; 1 when they cannot be read (logged).
   */
  probeUnits(probe: {
    method: string;
    path: string | null;
    headers: Record<string, string>;
  }): number {
    if (!this.read) return 1;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(probe.headers)) headers[k.toLowerCase()] = v;
    const req = { headers, method: probe.method, url: probe.path ?? '/' } as IncomingMessage;
    try {
      return this.unitsOf(req);
    } catch {
      this.logger?.warn(
        `pool "${this.pool}": ${this.what} gives no valid cost for the probe's request; the ` +
          'probed concurrency counts 1 unit per request (set the header in probe.headers)',
      );
      return 1;
    }
  }

  private logOnce(what: string): void {
    if (this.failed) return;
    this.failed = true;
    this.logger?.error(
      `pool "${this.pool}": the cost function ${what}; such requests are answered 400 ` +
        'invalid_cost (logged once per pool)',
    );
  }
}

/** What is wrong with a cost header. */
class HeaderProblem {
  constructor(readonly problem: string) {}
}

/** A header's units (first value when repeated), or what is wrong with it. */
function parseHeader(raw: string | string[] | undefined): number | HeaderProblem {
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return new HeaderProblem('is missing');
  const text = value.trim();
  return UNITS_TEXT.test(text)
    ? Number(text)
    : new HeaderProblem(`is not a number (${JSON.stringify(text.slice(0, 40))})`);
}

/**
 * Units of one probe request of `pool` (1 when the pool is not costed): a probed concurrency
 * (and any cap counted in probe requests: interim caps, stored results) times this is the
 * pool's capacity in units.
 */
export function probeRequestUnits(pool: ResolvedPool): number {
  return pool.cost?.probeUnits(pool.probe) ?? 1;
}
