import { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { hasOverloadPolicy, type OverloadSettings } from '../config/overload-options';
import type { AcquireOptions } from '../storage/capacity-store.interface';
import { DEFAULT_PRIORITY_AGING, normalizePriority, normalizeTenant } from '../storage/queue-order';

/** What a queued request adds to the store's `acquire` options. */
export type PolicyAcquireOptions = Pick<
  AcquireOptions,
  'tenant' | 'priority' | 'priorityAging' | 'maxQueuePerTenant' | 'queueTargetMs'
>;

type Reader = (req: IncomingMessage) => unknown;

/** The header's value (the first one when repeated); header names are lower case in Node. */
function headerReader(name: string): Reader {
  const key = name.toLowerCase();
  return (req) => {
    const value = req.headers[key];
    return Array.isArray(value) ? value[0] : value;
  };
}

/**
 * The overload policies of one pool, resolved at startup (`ResolvedPool.overload`; absent when
 * the pool has none, so admission pays nothing for them). Reads the tenant and the priority of
 * a request, from the user's function or a header: a function that throws counts as the default
 * tenant / priority 0 (the request is not failed) and is logged once per pool.
 */
export class OverloadPolicy {
  /** A tenant function or header is set: the fast path passes the tenant for admitted counts. */
  readonly hasTenant: boolean;
  readonly priorityAging: number;
  readonly maxQueuePerTenant?: number;
  readonly queueTargetMs?: number;
  private readonly tenantReader?: Reader;
  private readonly priorityReader?: Reader;
  private readonly failed = { tenant: false, priority: false };

  private constructor(
    readonly pool: string,
    settings: OverloadSettings,
    private readonly logger?: Logger,
  ) {
    this.tenantReader =
      settings.tenant ??
      (settings.tenantHeader === undefined ? undefined : headerReader(settings.tenantHeader));
    this.priorityReader =
      settings.priority ??
      (settings.priorityHeader === undefined ? undefined : headerReader(settings.priorityHeader));
    this.hasTenant = this.tenantReader !== undefined;
    this.priorityAging = settings.priorityAging ?? DEFAULT_PRIORITY_AGING;
    this.maxQueuePerTenant = settings.maxQueuePerTenant;
    const target = settings.queueTargetMs;
    this.queueTargetMs = target !== undefined && target > 0 ? target : undefined;
  }

  /**
   * The policy of `pool` from its merged settings, or `undefined` when they turn nothing on.
   * `log`: the balancer's `logger` option (a throwing tenant or priority function is logged).
   */
  static from(pool: string, settings: OverloadSettings, log: boolean): OverloadPolicy | undefined {
    if (!hasOverloadPolicy(settings)) return undefined;
    const logger = log ? new Logger('BalancerModule') : undefined;
    const policy = new OverloadPolicy(pool, settings, logger);
    if (policy.maxQueuePerTenant !== undefined && !policy.hasTenant) {
      logger?.warn(
        `pool "${pool}": maxQueuePerTenant without tenant or tenantHeader bounds the one ` +
          'default tenant, i.e. the whole queue',
      );
    }
    return policy;
  }

  /** The request's tenant key (bounded, cleaned), or `undefined` for the default tenant. */
  tenantOf(req: IncomingMessage): string | undefined {
    return this.tenantReader
      ? normalizeTenant(this.read('tenant', this.tenantReader, req))
      : undefined;
  }

  /** The request's priority: an integer within the store's bounds, 0 when none is set. */
  priorityOf(req: IncomingMessage): number {
    return this.priorityReader
      ? normalizePriority(this.read('priority', this.priorityReader, req))
      : 0;
  }

  /** The store options of a request that queues, with its tenant and priority. */
  acquireOptions(tenant: string | undefined, priority: number): PolicyAcquireOptions {
    return {
      tenant,
      priority,
      priorityAging: this.priorityAging,
      maxQueuePerTenant: this.maxQueuePerTenant,
      queueTargetMs: this.queueTargetMs,
    };
  }

  private read(what: 'tenant' | 'priority', reader: Reader, req: IncomingMessage): unknown {
    try {
      return reader(req);
    } catch (error) {
      if (!this.failed[what]) {
        this.failed[what] = true;
        this.logger?.error(
          `pool "${this.pool}": the ${what} function threw (${describe(error)}); such requests ` +
            `count as ${what === 'tenant' ? 'the default tenant' : 'priority 0'} ` +
            '(logged once per pool)',
        );
      }
      return undefined;
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
