import { Inject, Injectable, Logger, NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { BASIC_CHALLENGE, checkBasicAuth } from './basic-auth';
import {
  clientConfig,
  DASHBOARD_CLIENT_DIR,
  loadDashboardAssets,
  type DashboardAssets,
  type DashboardFile,
} from './dashboard-assets';

type RawRequest = IncomingMessage & { originalUrl?: string };

/** Same-origin only; the client has no inline script (its config is a JSON data block). */
const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'self'; frame-ancestors 'none'; form-action 'none'";

const NOT_BUILT = Buffer.from(
  '<!doctype html><meta charset="utf-8"><title>nestjs-balancer</title>' +
    '<p>The balancer dashboard has not been built. Run <code>npm run build:client</code> in the ' +
    'nestjs-balancer package; the API at <code>/balancer/stats</code> works without it.</p>',
  'utf8',
);

/**
 * Serves the built dashboard under `ui.path` (registered by `configureDashboard` once the options
 * are resolved, so `forRootAsync` and any path work). A plain Nest middleware rather than
 * `@nestjs/serve-static`: it runs behind the same Basic auth on Express and Fastify, needs no
 * `@fastify/static`, follows the global prefix like the balancer's other routes, and answers
 * only for files of the build, handing every other path to the app (`next()`).
 */
@Injectable()
export class DashboardMiddleware implements NestMiddleware {
  private readonly logger = new Logger('BalancerDashboard');
  private readonly assets: DashboardAssets;
  private readonly uiPath: string;

  constructor(@Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions) {
    this.uiPath = options.ui.path;
    this.assets = loadDashboardAssets(
      DASHBOARD_CLIENT_DIR,
      clientConfig(this.uiPath, options.ui.historySeconds, options.routePrefix),
    );
    if (options.logger) {
      if (this.assets.index) this.logger.log(`dashboard at ${this.uiPath}`);
      else
        this.logger.error(
          `dashboard build not found in ${DASHBOARD_CLIENT_DIR}: run \`npm run build:client\` ` +
            `(${this.uiPath} answers 503 until then; /${options.routePrefix}/stats is unaffected)`,
        );
    }
  }

  use(req: RawRequest, res: ServerResponse, next: (error?: unknown) => void): void {
    const url = req.originalUrl ?? req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q >= 0 ? url.slice(0, q) : url;
    const target = this.resolve(pathname);
    if (!target) return next();

    if (!checkBasicAuth(req.headers.authorization, this.options.ui)) {
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', BASIC_CHALLENGE);
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.end(
        JSON.stringify({
          statusCode: 401,
          message: 'Credentials required for the balancer dashboard and stats',
          error: 'Unauthorized',
        }),
      );
      return;
    }
    if (target === 'redirect') {
      // `/x/ui` -> `ui/`: relative assets (`./assets/…`) then resolve under the mount.
      const last = this.uiPath.slice(this.uiPath.lastIndexOf('/') + 1);
      res.statusCode = 302;
      res.setHeader('Location', `${last}/${q >= 0 ? url.slice(q) : ''}`);
      res.setHeader('Cache-Control', 'no-store');
      res.end();
      return;
    }
    if (target === 'not-built') {
      res.statusCode = 503;
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.end(req.method === 'HEAD' ? undefined : NOT_BUILT);
      return;
    }
    this.send(req, res, target);
  }

  /** The file a path names, a redirect to the slash form, or `null` (not ours: next()). */
  private resolve(pathname: string): DashboardFile | 'redirect' | 'not-built' | null {
    if (pathname.endsWith(this.uiPath)) return 'redirect';
    const mount = `${this.uiPath}/`;
    const at = pathname.indexOf(mount);
    if (at < 0) return null;
    let rest: string;
    try {
      rest = decodeURIComponent(pathname.slice(at + mount.length));
    } catch {
      return null;
    }
    if (rest === '' || rest === 'index.html') return this.assets.index ?? 'not-built';
    return this.assets.files.get(rest) ?? null;
  }

  private send(req: RawRequest, res: ServerResponse, file: DashboardFile): void {
    res.setHeader('Content-Type', file.type);
    res.setHeader('ETag', file.etag);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (file.immutable) {
      res.setHeader('Cache-Control', 'private, max-age=31536000, immutable');
    } else {
      // Basic-auth protected and carries the runtime config: revalidate every time.
      res.setHeader('Cache-Control', 'private, no-cache');
      res.setHeader('Content-Security-Policy', CSP);
      res.setHeader('Referrer-Policy', 'no-referrer');
    }
    if (req.headers['if-none-match'] === file.etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.statusCode = 200;
    res.setHeader('Content-Length', file.body.length);
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }
}
