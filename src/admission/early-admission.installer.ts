import { Inject, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { EarlyAdmission } from './early-admission';
import { PoolRegistry, type ResolvedPool } from './pool-registry';
import { RouteTable } from './route-table';

/**
 * Methods whose requests carry no body: nothing to keep out of memory, so the guard (or
 * interceptor) admits them and they pay for no extra hook.
 */
const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS']);

type Next = (error?: unknown) => void;
type ExpressHandler = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
interface ExpressRouter extends ExpressHandler {
  [verb: string]: unknown;
}
interface ExpressApp {
  use(handler: ExpressHandler): unknown;
  get(setting: string): unknown;
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

/**
 * Admission before the body is read, on the watched routes that own their method and path
 * (`RouteTable.owner`), one mechanism per adapter:
 *
 * - Fastify: a `preParsing` hook on those routes (put by an `onRoute` hook; runs after routing,
 *   `onRequest` hooks and Nest middleware, before the content-type parser). Fastify routes host
 *   and version constraints itself, so constrained routes get it too.
 * - Express: one application-level step, mounted through the public `HttpAdapterHost.init$` as
 *   soon as Nest sets the adapter, so before the body parsers Nest registers in `init()`,
 *   `app.useBodyParser()` and `app.use(express.json())` in `main.ts`. Requests without a body
 *   pass on at once; the rest go through an Express router holding the owned routes. Routes
 *   under a host or a header / media-type version are left to the guard (the path alone does
 *   not route them on Express).
 *
 * Every other watched route is admitted by the guard (or interceptor) after routing.
 */
@Injectable()
export class EarlyAdmissionInstaller {
  private readonly logger = new Logger('BalancerModule');
  /** Express: the router of owned routes, set once the routes are known. */
  private router?: ExpressRouter;
  /** Express: the application-level step is mounted (the adapter was set before parsers). */
  private mounted = false;
  /** Express: a request reached admission with its body already read (logged once). */
  private parsedFirst = false;
  /** Express: routes whose pattern the early router refused, and why. */
  private readonly refused = new Map<string, string>();
  /** Fastify: every `METHOD url` the server registered (for the bootstrap check). */
  private readonly registered = new Set<string>();

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly registry: PoolRegistry,
    private readonly table: RouteTable,
    private readonly early: EarlyAdmission,
  ) {
    // `init$` replays: it fires now when the adapter is already set (NestFactory.create), or
    // when it is set later (`Test...compile()` then `createNestApplication()`), in both cases
    // before Nest or `main.ts` registers a body parser.
    adapterHost.init$?.subscribe(() => this.mountExpress());
  }

  /** Put early admission on the owned watched routes; `false` when the adapter has none. */
  install(): boolean {
    const adapter = this.adapterHost.httpAdapter;
    if (!adapter) return false;
    const type = adapter.getType();
    if (type === 'fastify') this.installFastify(adapter.getInstance<FastifyApp>());
    else if (type === 'express') this.installExpress(adapter.getInstance<ExpressApp>());
    else return false;
    for (const pool of this.registry.all()) {
      for (const r of pool.routes) {
        this.log('log', `${r.method} ${r.path}: ${this.where(r.method, r.path, pool, type)}`);
      }
    }
    return true;
  }

  /**
   * Fastify: watched routes the server did not register at the path the table computed (their
   * early admission would never run); `undefined` on other adapters (no public route list).
   */
  unregistered(routes: Array<{ method: string; path: string }>): string[] | undefined {
    if (this.adapterHost.httpAdapter?.getType() !== 'fastify') return undefined;
    return routes
      .filter(
        (r) =>
          !this.registered.has(`${r.method} ${r.path}`) &&
          !(r.method === 'ALL' && this.registered.has(`GET ${r.path}`)),
      )
      .map((r) => `${r.method} ${r.path}`);
  }

  private owns(method: string, path: string, pool: ResolvedPool, constraintsRoute: boolean) {
    return (
      this.options.earlyAdmission !== false &&
      !BODYLESS.has(method) &&
      this.table.owner(method, path, constraintsRoute) === pool
    );
  }

  /** `earlyAdmission` as a function: requests it declines are admitted after the guards. */
  private declined(req: IncomingMessage): boolean {
    const choose = this.options.earlyAdmission;
    return typeof choose === 'function' && !choose(req);
  }

  /** The startup line's account of where one route is admitted, and why. */
  private where(method: string, path: string, pool: ResolvedPool, type: string): string {
    if (BODYLESS.has(method)) return 'admitted after routing (no request body)';
    if (this.options.earlyAdmission === false) {
      return "admitted after the app's guards and body parsing (earlyAdmission: false); waiting bodies bounded by maxQueueBytes";
    }
    if (!this.owns(method, path, pool, type === 'fastify')) {
      return (
        'admitted after body parsing: other routes share this method and path (header or ' +
        'media-type versions, hosts, unwatched handlers) and only the matched handler tells ' +
        'which pool; waiting bodies bounded by maxQueueBytes'
      );
    }
    const refused = this.refused.get(`${method} ${path}`);
    if (refused !== undefined) {
      return `admitted after body parsing (Express's router refused the pattern: ${refused}); waiting bodies bounded by maxQueueBytes`;
    }
    if (type === 'express' && !this.mounted) {
      return 'admitted after body parsing (no adapter before the parsers); waiting bodies bounded by maxQueueBytes';
    }
    return typeof this.options.earlyAdmission === 'function'
      ? "admitted before its body is read when earlyAdmission(req) says so, else after the app's guards"
      : 'admitted before its body is read';
  }

  private installFastify(app: FastifyApp): void {
    if (this.options.bodyParser) {
      this.log('log', 'bodyParser option ignored on Fastify: it reads bodies after admission');
    }
    // A route-level hook on the watched routes only: other routes pay nothing, and a free slot
    // is taken without a promise.
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const m of methods) this.registered.add(`${m.toUpperCase()} ${route.url}`);
      if (this.options.earlyAdmission === false) return;
      const pool = methods
        .map((m) => m.toUpperCase())
        .filter((m) => !BODYLESS.has(m))
        .map((m) => this.table.owner(m, route.url, true))
        .find((p) => p !== undefined);
      if (!pool) return;
      const hook: PreParsingHook = (request, reply, payload, done) => {
        if (this.declined(request.raw)) {
          done(null, payload);
          return;
        }
        let admitted: void | Promise<void>;
        try {
          admitted = this.early.admit(pool, request.raw, reply.raw, true);
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
  }

  /** The application-level step: body-less requests pass at once, the rest meet the router. */
  private mountExpress(): void {
    const adapter = this.adapterHost.httpAdapter;
    if (this.mounted || adapter?.getType() !== 'express') return;
    this.mounted = true;
    adapter.getInstance<ExpressApp>().use((req, res, next) => {
      const router = this.router;
      if (router === undefined || BODYLESS.has(req.method ?? 'GET')) next();
      else router(req, res, next);
    });
  }

  private installExpress(app: ExpressApp): void {
    const router = expressRouter(app);
    for (const pool of this.registry.all()) {
      const handler: ExpressHandler = (req, res, next) => {
        if (this.declined(req)) {
          next();
          return;
        }
        // A parser put on the Express instance before the app was created has read the body.
        const unread = !req.readableEnded && (req as { body?: unknown }).body === undefined;
        if (!unread) this.noteParsedFirst(req);
        let admitted: void | Promise<void>;
        try {
          admitted = this.early.admit(pool, req, res, unread);
        } catch (error) {
          next(error);
          return;
        }
        if (admitted === undefined) next();
        else admitted.then(() => next(), next);
      };
      for (const r of pool.routes) {
        if (!this.owns(r.method, r.path, pool, false)) continue;
        const register = router[r.method === 'ALL' ? 'all' : r.method.toLowerCase()];
        if (typeof register !== 'function') continue;
        try {
          (register as (path: string, h: ExpressHandler) => unknown).call(router, r.path, handler);
        } catch (error) {
          // A pattern Express's router does not take as written (Nest rewrites some wildcards
          // for Express 5): the guard admits this route after routing instead.
          this.refused.set(`${r.method} ${r.path}`, (error as Error).message);
        }
      }
    }
    if (this.mounted) this.router = router;
    const parser = this.options.bodyParser;
    if (parser) {
      const adapter = this.adapterHost.httpAdapter as unknown as BodyParserAdapter;
      adapter.useBodyParser?.('json', parser.rawBody, { limit: parser.limit });
      adapter.useBodyParser?.('urlencoded', parser.rawBody, {
        limit: parser.limit,
        extended: true,
      });
    }
  }

  private noteParsedFirst(req: IncomingMessage): void {
    if (this.parsedFirst) return;
    this.parsedFirst = true;
    this.log(
      'warn',
      `${req.method} ${req.url}: the body was read before admission (a parser on the Express ` +
        'instance passed to ExpressAdapter?); such requests are admitted with their bodies in ' +
        'memory, bounded by maxQueueBytes',
    );
  }

  private log(level: 'log' | 'warn', message: string): void {
    if (this.options.logger) this.logger[level](message);
  }
}

/**
 * A router of the Express that `@nestjs/platform-express` uses (resolved from that package, as
 * the adapter itself does), with the application's case and strictness settings.
 */
function expressRouter(app: ExpressApp): ExpressRouter {
  const fromAdapter = createRequire(require.resolve('@nestjs/platform-express'));
  const express = fromAdapter('express') as {
    Router(options: { caseSensitive?: boolean; strict?: boolean }): ExpressRouter;
  };
  return express.Router({
    caseSensitive: app.get('case sensitive routing') === true,
    strict: app.get('strict routing') === true,
  });
}
