#!/usr/bin/env node
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BalancerConfigError } from '../config/balancer-config.error';
import { BenchBalancer, type BenchEvent, type BenchReport } from '../probe/bench-balancer';
import type { LevelStats, ProbeSettings } from '../probe/probe.types';
import { BalancerYamlDocument } from '../config/yaml-writer';

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Live progress may overwrite the current line (a terminal). */
  isTty: boolean;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTty: Boolean(process.stderr.isTTY),
};

/** Exit codes: 0 all endpoints done, 1 some endpoint could not be probed/exported, 2 usage or config error. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const USAGE = `nestjs-balancer <command> [options]

Commands:
  probe    Probe every endpoint of a balancer.yml against a live server and write
           the measured capacity into the file (comments and other keys are kept).
  export   Read the capacities a running app measured (GET /balancer/stats) and
           write them into a balancer.yml.

probe options:
  --url <url>                  base URL of the live server (required), e.g. http://localhost:3000
  --config <file>              balancer.yml to read (required; created if missing)
  --out <file>                 write here instead of updating --config
  --endpoint <path>            probe only this endpoint (repeatable)
  --error-threshold <n>        override error_threshold (fraction, e.g. 0.05)
  --latency-threshold-ms <n>   override latency_threshold_ms
  --max-concurrency <n>        override probe.max_concurrency
  --level-duration-ms <n>      override probe.level_duration_ms
  --warmup-ms <n>              override probe.warmup_ms
  --max-requests <n>           override probe.max_requests (budget per endpoint)
  --json                       print the full report as JSON on stdout
  --quiet                      no progress lines on stderr

export options:
  --url <url>                  base URL of the running app (required)
  --config <file>              balancer.yml to update (required; created if missing)
  --out <file>                 write here instead of updating --config
  --stats-path <path>          stats route (default /balancer/stats)
  --user <name>                Basic-auth user (or BALANCER_UI_USERNAME)
  --password <pw>              Basic-auth password (or BALANCER_UI_PASSWORD)
  --json                       print what was exported as JSON on stdout

Exit code: 0 when every endpoint succeeded, 1 when any could not be probed or
exported, 2 on a usage or configuration error.
`;

class UsageError extends Error {}

/** Run the CLI with `argv` (without `node` and the script). Resolves with the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      io.stdout(USAGE);
      return command ? EXIT_OK : EXIT_USAGE;
    }
    if (command === '--version' || command === '-v') {
      io.stdout(`${readVersion()}\n`);
      return EXIT_OK;
    }
    if (command === 'probe') return await probeCommand(rest, io);
    if (command === 'export') return await exportCommand(rest, io);
    throw new UsageError(`unknown command "${command}"`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    if (err instanceof BalancerConfigError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    io.stderr(`error: ${(err as Error)?.message ?? String(err)}\n`);
    return EXIT_FAILED;
  }
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

function parse(args: string[], options: OptionSpec): { values: Record<string, unknown> } {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }) as {
      values: Record<string, unknown>;
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function required(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function num(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number`);
  return n;
}

async function probeCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    endpoint: { type: 'string', multiple: true },
    'error-threshold': { type: 'string' },
    'latency-threshold-ms': { type: 'string' },
    'max-concurrency': { type: 'string' },
    'level-duration-ms': { type: 'string' },
    'warmup-ms': { type: 'string' },
    'max-requests': { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  });
  const url = required(values.url, 'url');
  const config = required(values.config, 'config');
  const overrides: Partial<ProbeSettings> = {
    errorThreshold: num(values['error-threshold'], 'error-threshold'),
    latencyThresholdMs: num(values['latency-threshold-ms'], 'latency-threshold-ms'),
    maxConcurrency: num(values['max-concurrency'], 'max-concurrency'),
    levelDurationMs: num(values['level-duration-ms'], 'level-duration-ms'),
    warmupMs: num(values['warmup-ms'], 'warmup-ms'),
    maxRequests: num(values['max-requests'], 'max-requests'),
  };
  const progress = values.quiet ? () => undefined : progressPrinter(io);
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  let report: BenchReport;
  try {
    report = await new BenchBalancer({
      baseUrl: url,
      overrides,
      onProgress: progress,
      signal: abort.signal,
      silent: true,
    }).run(
      config,
      (values.out as string | undefined) ?? config,
      values.endpoint as string[] | undefined,
    );
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (values.json) {
    io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    io.stdout(summaryTable(report));
  }
  if (report.skippedCredentials.length > 0) {
    io.stderr(
      `note: not written (credentials not already in the file): ${report.skippedCredentials.join(', ')}\n`,
    );
  }
  return report.ok ? EXIT_OK : EXIT_FAILED;
}

/** One line per level (and per endpoint start/end) on stderr. */
function progressPrinter(io: CliIo): (e: BenchEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'start':
        io.stderr(`probing ${e.endpoint} (${e.method} ${e.url})\n`);
        break;
      case 'level':
        io.stderr(`  ${levelLine(e.level)}\n`);
        break;
      case 'done':
        io.stderr(
          `  => capacity ${e.result.maxConcurrency} (${e.result.stopReason}, ` +
            `${(e.result.durationMs / 1000).toFixed(1)} s, ${e.result.requests} requests)\n`,
        );
        break;
      case 'failed':
        io.stderr(`  => FAILED: ${e.error.message}\n`);
        break;
    }
  };
}

export function levelLine(l: LevelStats): string {
  const verdict = l.pass ? 'pass' : `FAIL (${l.failure})`;
  return [
    `c=${String(l.concurrency).padStart(4)}`,
    `p50 ${fmtMs(l.p50Ms)}`,
    `p99 ${fmtMs(l.p99Ms)}`,
    `err ${(l.errorRate * 100).toFixed(1).padStart(5)}%`,
    `${l.throughputRps.toFixed(1).padStart(8)} rps`,
    `n=${String(l.requests).padStart(5)}`,
    verdict +
      (l.phase === 'repeat' ? ' (repeat)' : '') +
      (l.littleOk ? '' : ' [load short of level]'),
  ].join('  ');
}

function fmtMs(ms: number): string {
  return `${ms.toFixed(1).padStart(8)} ms`;
}

function summaryTable(report: BenchReport): string {
  const rows = report.endpoints.map((r) => [
    r.endpoint,
    r.ok ? String(r.capacity) : '-',
    r.ok ? (r.result?.stopReason ?? '') : `FAILED: ${r.error?.message ?? ''}`,
    r.result ? `${(r.result.durationMs / 1000).toFixed(1)} s` : '',
  ]);
  const table = formatTable(['endpoint', 'capacity', 'stop', 'time'], rows);
  return `${table}\n${report.ok ? 'wrote' : 'wrote (some endpoints failed)'} ${report.file}\n`;
}

export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

interface StatsEndpoint {
  capacity: number | null;
  capacity_source: string;
  routes?: string[];
}

async function exportCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    'stats-path': { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    json: { type: 'boolean' },
  });
  const url = required(values.url, 'url').replace(/\/+$/, '');
  const config = required(values.config, 'config');
  const out = (values.out as string | undefined) ?? config;
  const user = (values.user as string | undefined) ?? process.env.BALANCER_UI_USERNAME;
  const password = (values.password as string | undefined) ?? process.env.BALANCER_UI_PASSWORD;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (user !== undefined && password !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
  }
  const statsUrl = `${url}${(values['stats-path'] as string | undefined) ?? '/balancer/stats'}`;
  const res = await fetch(statsUrl, { headers });
  if (res.status === 401) throw new Error(`${statsUrl} answered 401: pass --user/--password`);
  if (!res.ok) throw new Error(`${statsUrl} answered ${res.status}`);
  const stats = (await res.json()) as { endpoints?: Record<string, StatsEndpoint> };

  const doc = existsSync(config)
    ? BalancerYamlDocument.parse(readFileSync(config, 'utf8'))
    : BalancerYamlDocument.empty();
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
  return exported.length > 0 ? EXIT_OK : EXIT_FAILED;
}

function readVersion(): string {
  try {
    // src/cli and dist/cli both sit two levels below the package root.
    const pkg = readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8');
    return (JSON.parse(pkg) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
