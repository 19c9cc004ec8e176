import { Inject, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { EarlyAdmission } from './early-admission';
import { PoolRegistry } from './pool-registry';

/** Names body-parser gives its middleware (Nest's own parsers, `app.useBodyParser`, `express.json()`). */
const BODY_PARSER_NAMES = new Set(['jsonParser', 'urlencodedParser', 'textParser', 'rawParser']);

type Next = (error?: unknown) => void;
type ExpressHandler = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
interface ExpressApp {
  router?: { stack?: Array<{ name?: string; handle?: { name?: string } }> };
  [verb: string]: unknown;
}
interface FastifyRequestLike {
  method: string;
  raw: IncomingMessage;
  routeOptions?: { url?: string };
}
interface FastifyApp {
  addHook(
    name: 'preParsing',
    hook: (
      request: FastifyRequestLike,
      reply: { raw: ServerResponse },
      payload: unknown,
    ) => Promise<unknown>,
  ): unknown;
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
 *   content-type parser) finds the pool from the matched route (`request.routeOptions.url`).
 * - Express: body parsers registered before the modules are configured (Nest's own, on by
 *   default; `app.useBodyParser()`; `app.use(express.json())` in `main.ts`) have already read the
 *   body, so admission stays with the guard and `maxQueueBytes` bounds the waiting bodies. With
 *   `NestFactory.create(AppModule, { bodyParser: false })`, a route-level middleware per watched
 *   route admits first; with the `bodyParser` option the balancer then registers the JSON and
 *   urlencoded parsers after it.
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
        this.log(
          'log',
          point === 'before-body'
            ? `${r.method} ${r.path}: admitted before its body is read`
            : `${r.method} ${r.path}: admitted after body parsing (the app parses bodies first); ` +
                `waiting bodies bounded by maxQueueBytes`,
        );
      }
    }
    return point;
  }

  private installFastify(app: FastifyApp): AdmissionPoint {
    if (this.options.bodyParser) {
      this.log('log', 'bodyParser option ignored on Fastify: it reads bodies after admission');
    }
    app.addHook('preParsing', async (request, reply, payload) => {
      const url = request.routeOptions?.url;
      const route = url === undefined ? undefined : this.registry.forRoute(request.method, url);
      if (route) await this.early.admit(route.pool, request.raw, reply.raw);
      return payload;
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
        this.early.admit(pool, req, res).then(() => next(), next);
      };
      for (const r of pool.routes) {
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
