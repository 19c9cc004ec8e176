import type { ExecutionContext } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resolution, RouteTable } from './route-table';

export interface RawRequest {
  headers: Record<string, string | string[] | undefined>;
}

/** A request as Nest hands it over: Express's is the Node request, Fastify's wraps it. */
export interface AdapterRequest extends RawRequest {
  method?: string;
  raw?: IncomingMessage;
  /** Express: the matched route. */
  route?: { path?: unknown };
  /** Fastify: the matched route's options. */
  routeOptions?: { url?: unknown };
}

/** A watched-or-not HTTP request as admission sees it (`matchHttp`). */
export interface HttpMatch {
  route: Resolution;
  rawReq: IncomingMessage;
  raw: ServerResponse;
  req: RawRequest;
}

/**
 * The raw request and response of an HTTP context, and the route it is on in the route table
 * (`null` for a route no pool watches, `UNRESOLVED` when the table cannot place it; usually two
 * map lookups by controller class and handler name). `undefined` outside HTTP.
 */
export function matchHttp(context: ExecutionContext, table: RouteTable): HttpMatch | undefined {
  if (context.getType() !== 'http') return undefined;
  // `getArgByIndex` rather than `switchToHttp()`, which assigns three new closures onto the
  // context on every call: this runs on every request of a watched route.
  const req = context.getArgByIndex<AdapterRequest>(0);
  // Express hands us the Node objects themselves; Fastify wraps them as `.raw`.
  const rawReq = (req.raw ?? req) as IncomingMessage;
  const reply = context.getArgByIndex<ServerResponse | { raw: ServerResponse }>(1);
  const raw: ServerResponse = 'raw' in reply ? reply.raw : reply;
  const route = table.resolve(
    context.getClass(),
    context.getHandler().name,
    req,
    routePathOf,
    rawReq.method ?? 'GET',
  );
  return { route, rawReq, raw, req };
}

/** The path pattern the HTTP adapter matched (Express `req.route.path`, Fastify `routeOptions.url`). */
export function routePathOf(req: AdapterRequest): string | undefined {
  const path = req.route?.path ?? req.routeOptions?.url;
  return typeof path === 'string' ? path : undefined;
}
