import { rmSync } from 'node:fs';
import { buildDir, setBuildDir } from './child-build';

export default async function globalTeardown(): Promise<void> {
  const dir = buildDir();
  if (dir) rmSync(dir, { recursive: true, force: true });
  setBuildDir(undefined);
}
