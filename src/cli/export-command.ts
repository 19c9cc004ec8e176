import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { BalancerConfigError } from '../config/balancer-config.error';
import { DEFAULTS, normalizeRoutePrefix } from '../config/resolve-options';
import { parseBalancerYaml } from '../config/yaml-config.loader';
import { BalancerYamlDocument } from '../config/yaml-writer';
import { describeFetchError, num, parse, required, UsageError, type CliIo } from './cli-args';
import { formatTable } from './format-table';

export const EXPORT_USAGE = `nestjs-balancer export --url <url> --config <file> [options]

Read the capacities a running app measured (GET /<route_prefix>/stats) and write them
into a balancer.yml (comments and other keys are kept).

Options:
  --url <url>                  base URL of the running app (required)
  --config <file>              balancer.yml to update (required; created if missing)
  --out <file>                 write here instead of updating --config
  --stats-path <path>          stats route (default /<route_prefix>/stats, with the
                               route_prefix of --config; /balancer/stats without one)
  --user <name>                Basic-auth user (or BALANCER_UI_USERNAME)
  --password <pw>              Basic-auth password (or BALANCER_UI_PASSWORD)
  --timeout <s>                seconds to wait for the answer (default 10)
  --json                       print what was exported as JSON on stdout
  -h, --help                   this help
`;

/** Seconds `export` waits for the stats answer unless `--timeout` says otherwise. */
export const DEFAULT_EXPORT_TIMEOUT_S = 10;

interface StatsEndpoint {
  capacity: number | null;
  capacity_source: string;
  routes?: string[];
}

/** `nestjs-balancer export`: resolves with the exit code (0 something exported, 1 nothing). */
export async function exportCommand(args: string[], io: CliIo): Promise<number> {
  const values = parse(
    args,
    {
      url: { type: 'string' },
      config: { type: 'string' },
      out: { type: 'string' },
      'stats-path': { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    EXPORT_USAGE,
  );
  const url = required(values.url, 'url', EXPORT_USAGE).replace(/\/+$/, '');
  const config = required(values.config, 'config', EXPORT_USAGE);
  const timeoutS = num(values.timeout, 'timeout', EXPORT_USAGE) ?? DEFAULT_EXPORT_TIMEOUT_S;
  if (!(timeoutS > 0) || timeoutS > 3600) {
    throw new UsageError(
      '--timeout must be a number of seconds above 0 (at most 3600)',
      EXPORT_USAGE,
    );
  }
  const out = (values.out as string | undefined) ?? config;
  const user = (values.user as string | undefined) ?? process.env.BALANCER_UI_USERNAME;
  const password = (values.password as string | undefined) ?? process.env.BALANCER_UI_PASSWORD;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (user !== undefined && password !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
  }
  // Read the file first: a malformed one stops here, before the server is asked anything.
  const text = existsSync(config) ? readFileSync(config, 'utf8') : undefined;
  const statsPath =
    (values['stats-path'] as string | undefined) ??
    `/${text === undefined ? DEFAULTS.routePrefix : routePrefixOf(text, config)}/stats`;
  const statsUrl = `${url}${statsPath}`;
  const stats = await fetchStats(statsUrl, headers, timeoutS);

  const doc = text === undefined ? BalancerYamlDocument.empty() : BalancerYamlDocument.parse(text);
  const exported: Array<{ endpoint: string; capacity: number }> = [];
  const skipped: Array<{ pool: string; reason: string }> = [];
  for (const [pool, e] of Object.entries(stats.endpoints ?? {})) {
    if (e.capacity === null || e.capacity_source !== 'probe') {
      skipped.push({
        pool,
        reason: `capacity ${e.capacity ?? 'unknown'} (${e.capacity_source}), not measured`,
      });
      continue;
    }
    // The same rule as endpoints.<path>.capacity: whatever the server says, the file stays valid.
    if (!Number.isInteger(e.capacity) || e.capacity < 1) {
      skipped.push({ pool, reason: `capacity ${e.capacity} is not a positive integer` });
      continue;
    }
    // A pool named after a path is that endpoint; a named pool covers its routes' paths.
    const keys = pool.startsWith('/')
      ? [pool]
      : [...new Set((e.routes ?? []).map((r) => r.slice(r.indexOf(' ') + 1)))];
    for (const key of keys) {
      doc.setCapacity(key, e.capacity);
      exported.push({ endpoint: key, capacity: e.capacity });
    }
  }
  writeFileSync(out, doc.toString());
  if (values.json) {
    io.stdout(`${JSON.stringify({ file: out, exported, skipped }, null, 2)}\n`);
  } else {
    io.stdout(
      formatTable(
        ['endpoint', 'capacity'],
        exported.map((x) => [x.endpoint, String(x.capacity)]),
      ),
    );
    for (const s of skipped) io.stderr(`skipped ${s.pool}: ${s.reason}\n`);
    io.stdout(`wrote ${out}\n`);
  }
  return exported.length > 0 ? 0 : 1;
}

/** The file's `route_prefix` (where the app serves its stats), or the default. */
function routePrefixOf(text: string, source: string): string {
  const given: unknown = parseBalancerYaml(text, source).options.routePrefix;
  if (given === undefined) return DEFAULTS.routePrefix;
  const prefix = typeof given === 'string' ? normalizeRoutePrefix(given) : '';
  if (prefix === '') {
    throw new BalancerConfigError(source, [
      `route_prefix must be a non-empty path (got ${JSON.stringify(given)}); or pass --stats-path`,
    ]);
  }
  return prefix;
}

async function fetchStats(
  statsUrl: string,
  headers: Record<string, string>,
  timeoutS: number,
): Promise<{ endpoints?: Record<string, StatsEndpoint> }> {
  const signal = AbortSignal.timeout(timeoutS * 1000);
  try {
    const res = await fetch(statsUrl, { headers, signal });
    if (res.status === 401) throw new Error(`${statsUrl} answered 401: pass --user/--password`);
    if (!res.ok) throw new Error(`${statsUrl} answered ${res.status}`);
    return (await res.json()) as { endpoints?: Record<string, StatsEndpoint> };
  } catch (err) {
    if ((err as Error).message.startsWith(statsUrl)) throw err;
    throw new Error(describeFetchError(err, statsUrl, timeoutS));
  }
}
