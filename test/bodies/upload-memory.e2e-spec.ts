import type { ChildProcess } from 'node:child_process';
import type { UploadAppConfig } from '../fixtures/upload-app';
import { poolStats, waitFor } from '../harness/wait-for';
import { killAll, type Worker } from '../redis/workers';
import { payloadOf, rssOf, startUploadServer, upload, type UploadResult } from './upload-client';

const UPLOADS = 200;
const BODY = 2 * 1024 * 1024;
/**
 * Waiting uploads cost their connections, not their bodies (400 MB here). Measured growth is
 * 5-15 MB on either adapter (docs/admission.md); the bound leaves room for a loaded machine
 * while still failing if even a tenth of the waiting bodies were held.
 */
const GROWTH_BOUND = 30 * 1024 * 1024;

/**
 * 200 concurrent 2 MB JSON uploads to a capacity-1 route: while 199 of them wait, the server's
 * RSS (read from /proc, the server runs in a child process) grows by far less than the 400 MB
 * of bodies; then every upload is served with its body intact.
 * Express in the three ways apps parse bodies: Nest's default parser with
 * `app.useBodyParser('json', { limit })`, `app.use(express.json())` in main.ts, and
 * `{ bodyParser: false }` with the balancer's `bodyParser` option.
 */
const CASES: Array<[UploadAppConfig['platform'], UploadAppConfig['parse']]> = [
  ['fastify', 'balancer'],
  ['express', 'app'],
  ['express', 'express-json'],
  ['express', 'balancer'],
];

describe.each(CASES)('waiting uploads hold no bodies on %s (parse: %s)', (platform, parse) => {
  const children = new Set<ChildProcess>();
  let server: Worker;

  beforeAll(async () => {
    server = await startUploadServer(
      { platform, parse, capacity: 1, work: 'hold', queueTimeout: 120 },
      children,
    );
  });
  afterAll(() => killAll(children));

  it('keeps RSS growth far below the bodies while 199 uploads wait, then serves all intact', async () => {
    const payload = payloadOf(BODY);
    // Warm up what a served upload runs (body parser, JSON parse, hashing) on an unwatched
    // route, so the baseline already holds that code and the peak measures the waiting only.
    const warm = await upload(server.url, -1, payloadOf(1024), '/test/warm');
    expect(JSON.parse(warm.body)).toEqual({ id: -1, sha256: warm.expected });
    const before = rssOf(server.pid);

    const results: Array<Promise<UploadResult>> = [];
    for (let i = 0; i < UPLOADS; i++) results.push(upload(server.url, i, payload));
    await waitFor(
      async () => (await poolStats(server.url, '/upload')).queued === UPLOADS - 1,
      60_000,
      `${UPLOADS - 1} uploads queued`,
    );
    // Sample while they wait (the clients keep pushing into the socket buffers meanwhile).
    let peak = 0;
    for (let i = 0; i < 10; i++) {
      peak = Math.max(peak, rssOf(server.pid));
      await new Promise((r) => setTimeout(r, 50));
    }
    const growth = peak - before;

    await fetch(`${server.url}/test/open`, { method: 'POST' });
    const done = await Promise.all(results);
    const after = rssOf(server.pid);
    process.stdout.write(
      `[bodies] ${platform} (${parse}): RSS before ${mb(before)}, peak ${mb(peak)} (+${mb(growth)}) while ` +
        `${UPLOADS - 1} x 2 MB uploads wait, after all served ${mb(after)}\n`,
    );
    expect(growth).toBeLessThan(GROWTH_BOUND);
    for (const r of done) {
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ id: r.id, sha256: r.expected });
    }
  });
});

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
