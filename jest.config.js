/*
 * Three passes (CONTRIBUTING.md, "Running the tests"):
 * - `parallel` (npm run test:parallel): every suite but the timing and idle ones, on five
 *   workers (its suites wait on timers, sockets and child processes much of the time; none of
 *   its assertions reads machine speed, so sharing two cores costs it nothing but time).
 * - `timing` (npm run test:timing, --runInBand): the suites whose assertions read machine speed
 *   (probe accuracy, p99 and median latency, goodput, how fast adaptive capacity follows a
 *   backend), one at a time
 *   so no neighbouring suite moves their readings. A suite that asserts such numbers goes here.
 * - `idle` (npm run test:idle): the slow-model suites (IDLE_SUITES below), beside the timing
 *   pass.
 * `npx jest <path>` runs a suite of any pass.
 */
const TIMING_SUITES = [
  'test/adaptive/adaptive.e2e-spec.ts',
  'test/adaptive/recovery.e2e-spec.ts',
  'test/cluster/cluster-probe.e2e-spec.ts',
  'test/overload/queue-target.e2e-spec.ts',
  'test/overload/redis-priority-target.e2e-spec.ts',
  'test/overload/redis-tenants.e2e-spec.ts',
  'test/overload/tenants.e2e-spec.ts',
  'test/probe/early-failure.e2e-spec.ts',
  'test/probe/probe.e2e-spec.ts',
  'test/probe/startup-probe.e2e-spec.ts',
  'test/redis/probe-once.e2e-spec.ts',
];

/*
 * The slow-model suites (`npm run test:idle`): models whose calls take 3 to 10 s, so each suite
 * runs one to two minutes and spends nearly all of it waiting on timers. Their bounds are in
 * model calls and seconds, which a busy CPU does not move. They run as their own pass beside the
 * timing pass (about a fifth of one core on average), so that they neither hold parallel workers
 * for two minutes nor take CPU from the parallel pass, which keeps both cores busy.
 */
const IDLE_SUITES = [
  'test/probe/probing-admission-redis.e2e-spec.ts',
  'test/probe/probing-admission.e2e-spec.ts',
  'test/probe/slow-knee.e2e-spec.ts',
  'test/probe/slow-queue.e2e-spec.ts',
];

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const patterns = (files) => files.map((f) => `<rootDir>/${escape(f)}$`);
const timingPatterns = patterns(TIMING_SUITES);
const idlePatterns = patterns(IDLE_SUITES);

/** @type {import('jest').Config} */
const project = {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testRegex: '\\.(spec|e2e-spec)\\.ts$',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...project,
      displayName: 'parallel',
      testPathIgnorePatterns: ['/node_modules/', ...timingPatterns, ...idlePatterns],
    },
    {
      ...project,
      displayName: 'timing',
      testRegex: timingPatterns.map((p) => p.replace('<rootDir>/', '')),
    },
    {
      ...project,
      displayName: 'idle',
      testRegex: idlePatterns.map((p) => p.replace('<rootDir>/', '')),
    },
  ],
  // Compiles what child processes run, once per run (test/harness/child-build.ts).
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  // The longest suites start first (test/harness/sequencer.mjs).
  testSequencer: '<rootDir>/test/harness/sequencer.mjs',
  testTimeout: 60000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
};
