import { Inject, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { EarlyAdmission } from './early-admission';
import { PoolRegistry, type PoolRoute, type ResolvedPool } from './pool-registry';

/**
 * Methods whose requests carry no body: nothing to keep out of memory, so the guard (or
 * interceptor) admits them and they pay for no extra hook.
 */
const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Names body-parser gives its middleware (Nest's own parsers, `app.useBodyParser`, `express.json()`). */
const BODY_PARSER_NAMES = new Set(['jsonParser', 'urlencodedParser', 'textParser', 'rawParser']);

type Next = (error?: unknown) => void;
type ExpressHandler = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
interface ExpressApp {
  router?: { stack?: Array<{ name?: string; handle?: { name?: string } }> };
  [verb: string]: unknown;
}
type PreParsingHook = (
  request: { raw: IncomingMessage },
  reply: { raw: ServerResponse },
  payload: unknown,
  done: (error: unknown, payload?: unknown) => void,
) => void;
interface FastifyRouteOptions {
  method: string | string[];
  url: string;
  preParsing?: PreParsingHook | PreParsingHook[];
}
interface FastifyApp {
  addHook(name: 'onRoute', hook: (route: FastifyRouteOptions) => void): unknown;
}
interface BodyParserAdapter {
  useBodyParser?(type: string, rawBody: boolean, options: Record<string, unknown>): unknown;
}

/** Where admission sits relative to body parsing, per watched route. */
export type AdmissionPoint = 'before-body' | 'after-body';

/**
 * Puts early admission on the watched routes when the server allows it; called from
 * `BalancerModule.configure()`, after discovery and before Nest registers middleware and routes.
 *
 * - Fastify: a `preParsing` hook (runs after `onRequest` hooks and Nest middleware, before the
 *   content-type parser), put by an `onRoute` hook on the watched routes only (pool by closure).
 * - Express: body parsers registered before the modules are configured (Nest's own, on by
 *   default; `app.useBodyParser()`; `app.use(express.json())` in `main.ts`) have already read the
 *   body, so admission stays with the guard and `maxQueueBytes` bounds the waiting bodies. With
 *   `NestFactory.create(AppModule, { bodyParser: false })`, a route-level middleware per watched
 *   route admits first; with the `bodyParser` option the balancer then registers the JSON and
 *   urlencoded parsers after it.
 * - Both: routes of different pools that share a method and path (header- or media-type-versioned
 *   routes) are left to the guard or interceptor, which admit after routing (and parsing) into
 *   the pool of the handler that matched.
 */
@Injectable()
export class EarlyAdmissionInstaller {
  private readonly logger = new Logger('BalancerModule');

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly registry: PoolRegistry,
    private readonly early: EarlyAdmission,
  ) {}

  install(): AdmissionPoint | null {
    const adapter = this.adapterHost.httpAdapter;
    if (!adapter) return null;
    const type = adapter.getType();
    let point: AdmissionPoint;
    if (type === 'fastify') point = this.installFastify(adapter.getInstance<FastifyApp>());
    else if (type === 'express') point = this.installExpress(adapter.getInstance<ExpressApp>());
    else return null;
    for (const pool of this.registry.all()) {
      for (const r of pool.routes) {
        this.log('log', `${r.method} ${r.path}: ${this.where(r, pool, point)}`);
      }
    }
    return point;
  }

  /** The startup line's account of where one route is admitted, and why. */
  private where(route: PoolRoute, pool: ResolvedPool, point: AdmissionPoint): string {
    if (BODYLESS.has(route.method)) return 'admitted after routing (no request body)';
    if (point === 'after-body') {
      return 'admitted after body parsing (the app parses bodies first); waiting bodies bounded by maxQueueBytes';
    }
    if (!this.ownedBy(route.method, route.path, pool)) {
      return (
        'admitted after body parsing: routes of different pools share this method and path ' +
        '(header or media-type versions), and only the matched handler tells which pool; ' +
        'waiting bodies bounded by maxQueueBytes'
      );
    }
    return 'admitted before its body is read';
  }

  /**
   * Whether requests to `method path` can only be for `pool`. Not so when routes of different
   * pools share the method and path (header or media-type versions): before routing picks the
   * handler nothing tells which pool a request is for, so the guard admits those after parsing.
   */
  private ownedBy(method: string, path: string, pool: ResolvedPool): boolean {
    return this.registry.forRoute(method, path)?.pool === pool;
  }

  private installFastify(app: FastifyApp): AdmissionPoint {
    if (this.options.bodyParser) {
      this.log('log', 'bodyParser option ignored on Fastify: it reads bodies after admission');
    }
    // A route-level hook on the watched routes only: other routes pay nothing, and a free slot
    // is taken without a promise.
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const watched = methods
        .filter((m) => !BODYLESS.has(m.toUpperCase()))
        .map((m) => this.registry.forRoute(m, route.url))
        .find((r) => r !== undefined);
      if (!watched) return;
      const pool = watched.pool;
      const hook: PreParsingHook = (request, reply, payload, done) => {
        let admitted: void | Promise<void>;
        try {
          admitted = this.early.admit(pool, request.raw, reply.raw);
        } catch (error) {
          done(error);
          return;
        }
        if (admitted === undefined) done(null, payload);
        else admitted.then(() => done(null, payload), done);
      };
      const before = route.preParsing;
      route.preParsing = before === undefined ? [hook] : [...[before].flat(), hook];
    });
    return 'before-body';
  }

  private installExpress(app: ExpressApp): AdmissionPoint {
    const parsers = (app.router?.stack ?? []).filter((l) =>
      BODY_PARSER_NAMES.has(l.name ?? l.handle?.name ?? ''),
    );
    if (parsers.length > 0) {
      if (this.options.bodyParser) {
        this.log(
          'warn',
          'bodyParser option ignored: the app already parses bodies; create it with ' +
            '{ bodyParser: false } to admit requests before their bodies are read',
        );
      }
      return 'after-body';
    }
    for (const pool of this.registry.all()) {
      const handler: ExpressHandler = (req, res, next) => {
        let admitted: void | Promise<void>;
        try {
          admitted = this.early.admit(pool, req, res);
        } catch (error) {
          next(error);
          return;
        }
        if (admitted === undefined) next();
        else admitted.then(() => next(), next);
      };
      for (const r of pool.routes) {
        if (BODYLESS.has(r.method) || !this.ownedBy(r.method, r.path, pool)) continue;
        const verb = r.method === 'ALL' ? 'all' : r.method.toLowerCase();
        const register = app[verb];
        if (typeof register === 'function') {
          (register as (path: string, h: ExpressHandler) => unknown).call(app, r.path, handler);
        }
      }
    }
    const parser = this.options.bodyParser;
    if (parser) {
      const adapter = this.adapterHost.httpAdapter as unknown as BodyParserAdapter;
      adapter.useBodyParser?.('json', parser.rawBody, { limit: parser.limit });
      adapter.useBodyParser?.('urlencoded', parser.rawBody, {
        limit: parser.limit,
        extended: true,
      });
    }
    return 'before-body';
  }

  private log(level: 'log' | 'warn', message: string): void {
    if (this.options.logger) this.logger[level](message);
  }
}
