import { join } from 'node:path';
import { BUILD_PARENT, buildForChildren, removeStaleBuilds, setBuildDir } from './child-build';

// Jest global setup: compile what child processes run, once per run (test/harness/child-build.ts).
// The Redis harness (test/harness/redis.ts) adds its server here.
export default async function globalSetup(): Promise<void> {
  removeStaleBuilds(BUILD_PARENT);
  const dir = join(BUILD_PARENT, `run-${process.pid}`);
  buildForChildren(dir);
  setBuildDir(dir);
}
