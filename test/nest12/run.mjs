// The Nest 12 leg of `npm test`: pack this package, install the tarball beside Nest 12 into a
// fresh project (no --legacy-peer-deps, no --force: the peer ranges must allow it), and run a
// real app there with Node's own test runner. The temp project is removed in every case.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { distIsCurrent } from '../harness/dist-current.mjs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
/**
 * What the leg needs beside the tarball: Nest 12, both HTTP adapters and our required peers,
 * plus the optional @nestjs/schedule so its Nest 12 major is checked against our range too.
 */
const NEST12 = [
  '@nestjs/common@^12.0.0',
  '@nestjs/core@^12.0.0',
  '@nestjs/platform-express@^12.0.0',
  '@nestjs/platform-fastify@^12.0.0',
  '@nestjs/terminus@^12.0.0',
  '@nestjs/schedule@^12.0.0',
  'reflect-metadata@^0.2.0',
  'rxjs@^7.8.0',
];

const started = performance.now();
/** @type {(from: number) => string} */
const seconds = (from) => ((performance.now() - from) / 1000).toFixed(1);
/** @type {(line: string) => boolean} */
const log = (line) => process.stdout.write(`[nest12] ${line}\n`);

/**
 * Run a command; on failure throw with everything it printed.
 * @param {string} what
 * @param {string} command
 * @param {string[]} args
 * @param {string} cwd
 * @returns {string}
 */
function step(what, command, args, cwd) {
  const t = performance.now();
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    const why = r.error?.message ?? `exit ${r.status ?? r.signal}`;
    throw new Error(`${what} failed (${why})\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  log(`${what}: ${seconds(t)} s`);
  return r.stdout;
}

const dir = mkdtempSync(join(tmpdir(), 'nestjs-balancer-nest12-'));
const cleanup = () => rmSync(dir, { recursive: true, force: true });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    cleanup();
    process.exit(1);
  });
}

let code = 1;
try {
  // Pack what would be published: the library as built from src/ now (the dashboard is built
  // by `npm test`). Within `npm test` dist/ is current (built by .ci/run, or by `npm test`
  // before this leg starts): no second build.
  if (distIsCurrent()) log('build: dist/ is newer than src/, kept');
  else step('build', 'npm', ['run', 'build:lib'], root);
  const [packed] = JSON.parse(
    step('pack', 'npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], root),
  );
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'nest12-leg', private: true, type: 'module' }),
  );
  step(
    'install',
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--no-package-lock',
      '--strict-peer-deps',
      '--legacy-peer-deps=false',
      '--force=false',
      `./${packed.filename}`,
      ...NEST12,
    ],
    dir,
  );
  /** @type {(name: string) => string} */
  const version = (name) =>
    JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
  log(
    `installed ${packed.filename} with @nestjs/core ${version('@nestjs/core')}, ` +
      `@nestjs/platform-fastify ${version('@nestjs/platform-fastify')}, ` +
      `@nestjs/terminus ${version('@nestjs/terminus')}, ` +
      `@nestjs/schedule ${version('@nestjs/schedule')} on Node ${process.versions.node}`,
  );
  copyFileSync(join(here, 'app.test.mjs'), join(dir, 'app.test.mjs'));
  const t = performance.now();
  const test = spawnSync(process.execPath, ['--test', '--test-reporter=spec', 'app.test.mjs'], {
    cwd: dir,
    stdio: 'inherit',
    timeout: 180_000,
  });
  code = test.status ?? 1;
  log(`node --test: ${seconds(t)} s, exit ${test.status ?? test.signal}`);
} catch (error) {
  process.stderr.write(`[nest12] ${error instanceof Error ? error.message : String(error)}\n`);
} finally {
  cleanup();
}
log(`Nest 12 leg ${code === 0 ? 'passed' : 'FAILED'} in ${seconds(started)} s`);
process.exit(code);
