// `npm test`: every pass, in an order that keeps the timing pass's machine quiet.
//   1. the dashboard client (the browser and package suites need client/dist), and dist/ when
//      it is older than src/ (`.ci/run` has just built it: then not again), so that the
//      package suite and the Nest 12 leg, running side by side, both find it built;
//   2. the parallel Jest pass, and beside it the Nest 12 leg (mostly npm install: waiting on
//      disk, little CPU); neither holds an assertion on machine speed;
//   3. the timing Jest pass, one suite at a time (it asserts accuracy and latency), with only
//      the idle pass beside it: the slow-model suites, whose calls take 3-10 s and who spend
//      their minute or two waiting on timers (about a fifth of one core on average, their
//      bounds in seconds and model calls). The parallel pass keeps both cores.
// The parallel and timing passes' output is printed as it comes (the Nest 12 leg's and the idle
// pass's once each is done, so they do not interleave); at the end one line per pass with its
// time, and the exit code is non-zero when any pass failed. Run one pass alone with `npm run test:parallel`, `test:idle`,
// `test:timing`, `test:nest12`.
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { distIsCurrent } from './harness/dist-current.mjs';

/** @typedef {{ name: string, code: number, seconds: number }} PassResult */

/**
 * Run `npm run <script>`; its output goes to ours at once, or in one piece at the end.
 * @param {string} script
 * @param {{ buffered?: boolean }} [opts]
 * @returns {Promise<PassResult>}
 */
function pass(script, opts = {}) {
  const started = performance.now();
  const child = spawn('npm', ['run', '--silent', script], {
    stdio: opts.buffered ? ['ignore', 'pipe', 'pipe'] : 'inherit',
  });
  /** @type {Buffer[]} */
  const output = [];
  child.stdout?.on('data', (d) => output.push(d));
  child.stderr?.on('data', (d) => output.push(d));
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      if (opts.buffered) process.stdout.write(Buffer.concat(output));
      resolve({
        name: script,
        code: code ?? (signal ? 1 : 0),
        seconds: (performance.now() - started) / 1000,
      });
    });
  });
}

const started = performance.now();
/** @type {PassResult[]} */
const results = [];
results.push(await pass('build:client'));
if (!distIsCurrent()) results.push(await pass('build:lib'));
if (results.every((r) => r.code === 0)) {
  const [parallel, nest12] = await Promise.all([
    pass('test:parallel'),
    pass('test:nest12', { buffered: true }),
  ]);
  results.push(parallel, nest12);
  const [timing, idle] = await Promise.all([
    pass('test:timing'),
    pass('test:idle', { buffered: true }),
  ]);
  results.push(timing, idle);
}
const failed = results.filter((r) => r.code !== 0);
process.stdout.write('\n');
for (const r of results) {
  const verdict = r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`;
  process.stdout.write(`[npm test] ${r.name}: ${r.seconds.toFixed(1)} s, ${verdict}\n`);
}
const total = ((performance.now() - started) / 1000).toFixed(1);
process.stdout.write(
  `[npm test] ${failed.length === 0 ? 'all passes passed' : `${failed.length} pass(es) FAILED`} in ${total} s\n`,
);
process.exit(failed.length === 0 ? 0 : 1);
