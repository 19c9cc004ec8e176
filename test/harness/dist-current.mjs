// Whether dist/ is current: shared by `npm test` (test/run-all.mjs) and the Nest 12 leg
// (test/nest12/run.mjs); test/harness/dist.ts applies the same rule inside Jest.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * dist/ was built after the last change to src/ and the TypeScript configs.
 * @returns {boolean}
 */
export function distIsCurrent() {
  const built = join(root, 'dist', 'index.js');
  if (!existsSync(built)) return false;
  const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })
    .map((f) => join(root, 'src', f))
    .concat([join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json')]);
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  return statSync(built).mtimeMs > newest;
}
