import type { ChildProcess } from 'node:child_process';
import { PLATFORMS } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';
import { killAll, type Worker } from '../redis/workers';
import { payloadOf, rawUpload, serverState, startUploadServer, upload } from './upload-client';

const CAPACITY = 2;
const WORK_MS = 100;
const BODY_TIMEOUT = 1;
const CLIENTS = 4;
const PER_CLIENT = 10;

/** `CLIENTS` loops of small uploads; resolves with the milliseconds the whole batch took. */
async function fastBatch(url: string, firstId: number): Promise<number> {
  const payload = payloadOf(1024);
  const start = Date.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; i < PER_CLIENT; i++) {
        const r = await upload(url, firstId + c * PER_CLIENT + i, payload);
        expect(r.status).toBe(200);
      }
    }),
  );
  return Date.now() - start;
}

/**
 * The slot is for the work, not the upload. A client trickling its body at 10 KB/s is admitted
 * before its body is read; once it holds a slot it has `bodyTimeout` seconds to deliver the
 * body, then it gets 408 and the slot goes back. The documented bound: a slow uploader takes at
 * most `bodyTimeout` seconds of one slot, so fast clients on a capacity-2 route lose at most
 * that much of one slot's throughput. Measured against the same batch without the slow client.
 */
describe.each(PLATFORMS)('a slow uploader on %s', (platform) => {
  const children = new Set<ChildProcess>();
  let server: Worker;
  beforeAll(async () => {
    server = await startUploadServer(
      {
        platform,
        parse: 'balancer',
        capacity: CAPACITY,
        work: WORK_MS,
        bodyTimeout: BODY_TIMEOUT,
        queueTimeout: 60,
      },
      children,
    );
  });
  afterAll(() => killAll(children));

  it('holds a slot at most bodyTimeout, then gets 408; fast clients keep capacity 2', async () => {
    await fastBatch(server.url, 1000); // warm-up
    const baseline = await fastBatch(server.url, 2000);

    const slow = rawUpload(server.url, {
      id: 'slow',
      declared: 200 * 1024,
      send: 200 * 1024,
      rate: 10 * 1024,
    });
    await waitFor(async () => (await poolStats(server.url, '/upload')).active_requests === 1);
    const callsBefore = (await serverState(server.url)).handler.calls;
    const withSlow = await fastBatch(server.url, 3000);

    const res = await slow.response;
    expect(res.status).toBe(408);
    expect(res.headers.connection).toBe('close');
    // Answered while the client was still uploading: the body never arrived, no handler ran.
    expect(slow.sent()).toBeLessThan(200 * 1024);
    expect((await serverState(server.url)).handler.calls).toBe(callsBefore + CLIENTS * PER_CLIENT);
    await waitFor(async () => (await poolStats(server.url, '/upload')).active_requests === 0);

    // The bound: at most BODY_TIMEOUT seconds of one of the two slots lost (half the
    // throughput for that long), plus the same again as slack for a shared machine.
    const bound = baseline + (2 * (BODY_TIMEOUT * 1000)) / CAPACITY + baseline * 0.5;
    process.stdout.write(
      `[bodies] ${platform}: fast batch ${baseline} ms alone, ${withSlow} ms next to a 10 KB/s uploader (bound ${Math.round(bound)} ms)\n`,
    );
    expect(withSlow).toBeLessThanOrEqual(bound);
  });
});
