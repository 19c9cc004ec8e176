// Jest test order: the longest suites first, so that the parallel pass does not end with one
// worker still running a long suite the others could have started beside. Jest's own order uses
// the durations of the previous run, which a clean clone (CI) does not have; the suites below
// (seconds measured in a full `npm test` on the 2-core machine) start first, longest first, then
// the rest in Jest's order.
import { createRequire } from 'node:module';

/** @type {typeof import('@jest/test-sequencer').default} */
const Sequencer = createRequire(import.meta.url)('@jest/test-sequencer').default;

/** Suites of 15 s and more, with their time in seconds. @type {Record<string, number>} */
const LONG = {
  'test/probe/cli.e2e-spec.ts': 65,
  'test/dashboard/dashboard.browser.e2e-spec.ts': 61,
  'test/bodies/waiting-uploads.e2e-spec.ts': 57,
  'test/redis/lease-loss.e2e-spec.ts': 56,
  'test/redis/failover.e2e-spec.ts': 31,
  'test/bodies/upload-memory.e2e-spec.ts': 29,
  'test/redis/faults.e2e-spec.ts': 29,
  'test/redis/degraded-mode.spec.ts': 26,
  'test/package/package.e2e-spec.ts': 24,
  'test/admission/deadlines.e2e-spec.ts': 23,
  'test/probe/bench-balancer-rules.e2e-spec.ts': 22,
  'test/redis/cluster.spec.ts': 19,
  'test/bodies/slow-uploader.e2e-spec.ts': 17,
  'test/redis/multi-process.e2e-spec.ts': 16,
  'test/adaptive/adaptive-off.e2e-spec.ts': 16,
  'test/probe/probe-units.e2e-spec.ts': 16,
  'test/contract/redis-cluster-store.spec.ts': 15,
};

export default class LongestFirst extends Sequencer {
  /**
   * @param {import('@jest/test-result').Test[]} tests
   * @returns {Promise<import('@jest/test-result').Test[]>}
   */
  async sort(tests) {
    const ordered = await super.sort(tests);
    /** @param {import('@jest/test-result').Test} test */
    const weight = (test) => {
      const rel = test.path
        .slice(test.context.config.rootDir.length + 1)
        .split('\\')
        .join('/');
      return LONG[rel] ?? 0;
    };
    return [...ordered].sort((a, b) => weight(b) - weight(a));
  }
}
