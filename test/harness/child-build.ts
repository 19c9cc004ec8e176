import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import ts from 'typescript';

/*
 * Child processes of the suites (workers, cluster apps, the CLI, the demo) run compiled
 * JavaScript with plain `node`, never ts-node: Jest's global setup (test/harness/global-setup.ts)
 * transpiles src/, test/ and examples/ once per run into `.test-build/run-<pid>/` (the same
 * layout as the repository, so `__dirname`-relative paths still work: `client` and
 * `package.json` are linked in) and hands the directory to the test processes in
 * `BALANCER_TEST_BUILD`. A suite starts a child with `spawnNode('test/fixtures/x.ts', ...)` or
 * gets the script with `compiledPath('test/fixtures/x.ts')`; the child's cwd stays the
 * repository root. Transpiling is what ts-node's `--transpile-only` did in every child (no type
 * check: `npm run typecheck` does that), done once instead of ~60 times.
 */

export const ROOT = join(__dirname, '..', '..');
const BUILD_ENV = 'BALANCER_TEST_BUILD';
const SOURCES = ['src', 'test', 'examples'];
/** Suites are run by Jest itself; only what a child process may load is compiled. */
const SKIP = /\.(spec|e2e-spec|contract)\.ts$/;

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else out.push(full);
  }
  return out;
}

/** Transpile every child-loadable `.ts` file under src/, test/ and examples/ into `outDir`. */
export function buildForChildren(outDir: string): void {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error('tsconfig.json could not be read');
  const compilerOptions = { ...config.options, sourceMap: false, declaration: false };
  for (const file of SOURCES.flatMap((d) => walk(join(ROOT, d)))) {
    const target = join(outDir, relative(ROOT, file));
    mkdirSync(dirname(target), { recursive: true });
    if (!file.endsWith('.ts')) {
      copyFileSync(file, target);
      continue;
    }
    if (SKIP.test(file)) continue;
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions,
      fileName: file,
    });
    writeFileSync(target.replace(/\.ts$/, '.js'), outputText);
  }
  for (const linked of ['client', 'package.json']) {
    symlinkSync(join(ROOT, linked), join(outDir, linked));
  }
}

/** Remove the builds of runs whose process is gone (a run killed before its teardown). */
export function removeStaleBuilds(parent: string): void {
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) {
    const pid = Number(/^run-(\d+)$/.exec(name)?.[1]);
    if (!pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
}

export const BUILD_PARENT = join(ROOT, '.test-build');

export function setBuildDir(dir: string | undefined): void {
  if (dir === undefined) delete process.env[BUILD_ENV];
  else process.env[BUILD_ENV] = dir;
}

export function buildDir(): string | undefined {
  return process.env[BUILD_ENV];
}

/**
 * The compiled JavaScript of `entry` (a `.ts` path relative to the repository root, e.g.
 * `test/fixtures/redis-worker.ts`, or absolute) in this run's build.
 */
export function compiledPath(entry: string): string {
  const dir = buildDir();
  if (!dir) {
    throw new Error(
      `${BUILD_ENV} is not set: run the suites through Jest (its global setup compiles the child processes' code)`,
    );
  }
  const rel = isAbsolute(entry) ? relative(ROOT, entry) : entry;
  const file = join(dir, rel.replace(/\.ts$/, '.js'));
  if (!existsSync(file)) throw new Error(`${entry} is not in the test build (${file})`);
  return file;
}

/** Start `entry` (a `.ts` path, see `compiledPath`) compiled, with plain node, cwd the root. */
export function spawnNode(
  entry: string,
  args: readonly string[] = [],
  options: SpawnOptions = {},
): ChildProcess {
  return spawn(process.execPath, [compiledPath(entry), ...args], { cwd: ROOT, ...options });
}
