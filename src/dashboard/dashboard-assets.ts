import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';

/**
 * The built client (`npm run build:client`). Resolved from this file, never from `cwd`:
 * `src/dashboard` (ts-node, Jest) and `dist/dashboard` (the package) both sit two levels below
 * the package root, where `client/dist` is.
 */
export const DASHBOARD_CLIENT_DIR = join(__dirname, '..', '..', 'client', 'dist');

/** One file of the dashboard, held in memory (the whole build is a few hundred kB). */
export interface DashboardFile {
  body: Buffer;
  type: string;
  etag: string;
  /** Hashed asset names never change content: cache them for good. */
  immutable: boolean;
}

export interface DashboardAssets {
  /** `index.html` with the runtime config injected, or `null` when the build is missing. */
  index: DashboardFile | null;
  /** Other files by their path relative to the mount (`assets/index-abc123.js`). */
  files: Map<string, DashboardFile>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/** What the client reads from `<script id="balancer-config">` to find the API. */
export interface DashboardClientConfig {
  /** URLs relative to the dashboard's own directory, so a global prefix or a proxy path works. */
  statsUrl: string;
  historyUrl: string;
  pollMs: number;
  historySeconds: number;
}

/**
 * The balancer's API seen from the dashboard page at `<prefix><uiPath>/`. Both sit behind the
 * same global prefix, so a relative URL (`../stats` for `/balancer/ui`) finds them whatever
 * the prefix or a reverse proxy in front adds.
 */
export function clientConfig(
  uiPath: string,
  historySeconds: number,
  routePrefix = 'balancer',
): DashboardClientConfig {
  const depth = uiPath.split('/').filter(Boolean).length;
  const up = '../'.repeat(depth);
  return {
    statsUrl: `${up}${routePrefix}/stats`,
    historyUrl: `${up}${routePrefix}/history`,
    pollMs: 2000,
    historySeconds,
  };
}

function file(body: Buffer, name: string, immutable: boolean): DashboardFile {
  const etag = `"${createHash('sha1').update(body).digest('base64url')}"`;
  return { body, type: TYPES[extname(name)] ?? 'application/octet-stream', etag, immutable };
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else out.push(full);
  }
  return out;
}

/** JSON that is safe inside `<script>` (no `</script>` or `<!--` can be formed). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/**
 * Read the built client into memory. Only files found here are ever served (no path from a
 * request reaches the file system), and a missing build gives `index: null`, not a throw.
 */
export function loadDashboardAssets(dir: string, config: DashboardClientConfig): DashboardAssets {
  const files = new Map<string, DashboardFile>();
  const indexPath = join(dir, 'index.html');
  if (!existsSync(indexPath)) return { index: null, files };
  for (const full of walk(dir)) {
    const rel = relative(dir, full).split(sep).join('/');
    if (rel === 'index.html' || rel.endsWith('.map')) continue;
    files.set(rel, file(readFileSync(full), rel, rel.startsWith('assets/')));
  }
  const tag = `<script id="balancer-config" type="application/json">${scriptJson(config)}</script>`;
  const html = readFileSync(indexPath, 'utf8').replace('</head>', `  ${tag}\n  </head>`);
  return { index: file(Buffer.from(html, 'utf8'), 'index.html', false), files };
}
