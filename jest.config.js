/*
 * Two passes (CONTRIBUTING.md, "Running the tests"):
 * - `parallel` (npm run test:parallel): every suite but the timing ones, on four workers (most
 *   of its time is waiting on timers, sockets and child processes, not CPU; none of its
 *   assertions reads machine speed, so sharing two cores costs it nothing but time).
 * - `timing` (npm run test:timing, --runInBand): the suites whose assertions read machine speed
 *   (probe accuracy, p99 and median latency, goodput, how fast adaptive capacity follows a
 *   backend), one at a time
 *   so no neighbouring suite moves their readings. A suite that asserts such numbers goes here.
 * `npx jest <path>` runs a suite of either pass.
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

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const timingPatterns = TIMING_SUITES.map((f) => `<rootDir>/${escape(f)}$`);

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
      testPathIgnorePatterns: ['/node_modules/', ...timingPatterns],
    },
    {
      ...project,
      displayName: 'timing',
      testRegex: timingPatterns.map((p) => p.replace('<rootDir>/', '')),
    },
  ],
  // Compiles what child processes run, once per run (test/harness/child-build.ts).
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
};
