import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { parseArgs } from 'node:util';
import { BalancerOptions } from '../config/balancer-options';

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Live progress may overwrite the current line (a terminal). */
  isTty: boolean;
}

/** A bad command line: printed with the usage of the command, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}

/** `--help` was asked for: print `usage` on stdout, exit 0. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super('help');
  }
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** Parse `args` against `options`; `--help`/`-h` anywhere wins over every other problem. */
export function parse(args: string[], options: OptionSpec, usage: string): Record<string, unknown> {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequested(usage);
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message, usage);
  }
}

export function required(value: unknown, name: string, usage: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new UsageError(`--${name} is required`, usage);
  }
  return value;
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** `--flag 12` as a number, or `undefined` when absent; `--flag 12abc` is a usage error. */
export function num(value: unknown, name: string, usage: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !NUMBER.test(value.trim())) {
    throw new UsageError(`--${name} must be a number (got "${String(value)}")`, usage);
  }
  return Number(value);
}

/**
 * Validate numeric flags with the module's own option classes, so the CLI accepts exactly what
 * `BalancerModule.forRoot()` accepts (`--max-concurrency 2.5` fails like
 * `probe.maxConcurrency: 2.5`). `flags` maps an option path (`probe.maxConcurrency`) to the
 * flag's name and value; errors name the flag.
 */
export function validateFlags(
  flags: Record<string, { flag: string; value: number | undefined }>,
  usage: string,
): void {
  const plain: Record<string, unknown> = {};
  for (const [path, { value }] of Object.entries(flags)) {
    if (value === undefined) continue;
    const [head, tail] = path.split('.');
    if (tail === undefined) plain[head] = value;
    else plain[head] = { ...(plain[head] as object | undefined), [tail]: value };
  }
  const problems: string[] = [];
  const walk = (errors: ValidationError[], prefix: string[]): void => {
    for (const e of errors) {
      const path = [...prefix, e.property];
      const flag = flags[path.join('.')]?.flag;
      for (const message of Object.values(e.constraints ?? {})) {
        const what = message.startsWith(`${e.property} `)
          ? message.slice(e.property.length + 1)
          : message;
        problems.push(`--${flag ?? path.join('.')} ${what}`);
      }
      walk(e.children ?? [], path);
    }
  };
  walk(validateSync(plainToInstance(BalancerOptions, plain)), []);
  if (problems.length > 0) throw new UsageError(problems.join('\n       '), usage);
}

/** What went wrong with a request, with the cause Node hides in `err.cause`. */
export function describeFetchError(err: unknown, url: string, timeoutS: number): string {
  const e = err as Error & { cause?: NodeJS.ErrnoException & { address?: string; port?: number } };
  if (e?.name === 'TimeoutError') {
    return `${url}: no answer within ${timeoutS} s (raise it with --timeout)`;
  }
  const cause = e?.cause;
  if (cause?.code) {
    const where = cause.address ? ` at ${cause.address}${cause.port ? `:${cause.port}` : ''}` : '';
    const hint = cause.code === 'ECONNREFUSED' ? ': is the app running and listening there?' : '';
    return `cannot reach ${url}: ${cause.code}${where}${hint}`;
  }
  // undici's "fetch failed" says nothing; its cause (a TLS or parser error…) says what happened.
  const why = cause?.message ? cause.message : (e?.message ?? String(err));
  return `cannot reach ${url}: ${why}`;
}
