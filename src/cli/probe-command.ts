import { BenchBalancer, type BenchEvent, type BenchReport } from '../probe/bench-balancer';
import type { LevelStats, ProbeSettings } from '../probe/probe.types';
import { num, parse, required, validateFlags, type CliIo } from './cli-args';
import { formatTable } from './format-table';

export const PROBE_USAGE = `nestjs-balancer probe --url <url> --config <file> [options]

Probe every endpoint of a balancer.yml against a live server and write the measured
capacity into the file (comments and other keys are kept).

Options:
  --url <url>                  base URL of the live server (required), e.g. http://localhost:3000
  --config <file>              balancer.yml to read (required; created if missing)
  --out <file>                 write here instead of updating --config
  --endpoint <path>            probe only this endpoint (repeatable)
  --error-threshold <n>        override error_threshold (fraction, e.g. 0.05)
  --latency-threshold-ms <n>   override latency_threshold_ms (absolute; unset: relative to the
                               endpoint's own unloaded latency, probe.latency_factor)
  --max-concurrency <n>        override probe.max_concurrency
  --level-duration-ms <n>      override probe.level_duration_ms
  --warmup-ms <n>              override probe.warmup_ms
  --max-requests <n>           override probe.max_requests (budget per endpoint)
  --max-duration-ms <n>        override probe.max_duration_ms (time budget per endpoint)
  --json                       print the full report as JSON on stdout
  --quiet                      no progress lines on stderr
  -h, --help                   this help
`;

/** `nestjs-balancer probe`: resolves with the exit code (0 all probed, 1 some failed). */
export async function probeCommand(args: string[], io: CliIo): Promise<number> {
  const values = parse(
    args,
    {
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
      'max-duration-ms': { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
    PROBE_USAGE,
  );
  const url = required(values.url, 'url', PROBE_USAGE);
  const config = required(values.config, 'config', PROBE_USAGE);
  const flag = (name: string) => ({ flag: name, value: num(values[name], name, PROBE_USAGE) });
  const flags = {
    errorThreshold: flag('error-threshold'),
    latencyThresholdMs: flag('latency-threshold-ms'),
    'probe.maxConcurrency': flag('max-concurrency'),
    'probe.levelDurationMs': flag('level-duration-ms'),
    'probe.warmupMs': flag('warmup-ms'),
    'probe.maxRequests': flag('max-requests'),
    'probe.maxDurationMs': flag('max-duration-ms'),
  };
  validateFlags(flags, PROBE_USAGE);
  const overrides: Partial<ProbeSettings> = {
    errorThreshold: flags.errorThreshold.value,
    latencyThresholdMs: flags.latencyThresholdMs.value,
    maxConcurrency: flags['probe.maxConcurrency'].value,
    levelDurationMs: flags['probe.levelDurationMs'].value,
    warmupMs: flags['probe.warmupMs'].value,
    maxRequests: flags['probe.maxRequests'].value,
    maxDurationMs: flags['probe.maxDurationMs'].value,
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
  return report.ok ? 0 : 1;
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
