#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BalancerConfigError } from '../config/balancer-config.error';
import { HelpRequested, UsageError, type CliIo } from './cli-args';
import { exportCommand } from './export-command';
import { probeCommand } from './probe-command';

export type { CliIo } from './cli-args';

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
  export   Read the capacities a running app measured (GET /<route_prefix>/stats)
           and write them into a balancer.yml.

Options:
  -h, --help                   this help
  -v, --version                print the version

Run \`nestjs-balancer <command> --help\` for the options of a command.

Exit code: 0 when every endpoint succeeded, 1 when any could not be probed or
exported, 2 on a usage or configuration error.
`;

/** Run the CLI with `argv` (without `node` and the script). Resolves with the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command) {
      io.stderr(USAGE);
      return EXIT_USAGE;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      io.stdout(USAGE);
      return EXIT_OK;
    }
    if (command === '--version' || command === '-v') {
      io.stdout(`${readVersion()}\n`);
      return EXIT_OK;
    }
    if (command === 'probe') return await probeCommand(rest, io);
    if (command === 'export') return await exportCommand(rest, io);
    throw new UsageError(`unknown command "${command}"`);
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stdout(err.usage);
      return EXIT_OK;
    }
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${err.usage ?? USAGE}`);
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
