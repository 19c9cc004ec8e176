import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/**
 * dist/ was built after the last change to src/ and the TypeScript configs (the same rule as
 * test/nest12/run.mjs): `.ci/run` builds it right before `npm test`, so the package suite and
 * the Nest 12 leg reuse it instead of building it again.
 */
export function distIsCurrent(): boolean {
  const built = join(ROOT, 'dist', 'index.js');
  if (!existsSync(built)) return false;
  const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .map((f) => join(ROOT, 'src', f))
    .concat([join(ROOT, 'tsconfig.json'), join(ROOT, 'tsconfig.build.json')]);
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  return statSync(built).mtimeMs > newest;
}

/** Build dist/ (`npm run build:lib`) unless it is current. */
export function ensureDist(): void {
  if (distIsCurrent()) return;
  execFileSync('npm', ['run', 'build:lib'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
