import type { ChildProcess } from 'node:child_process';
import { PLATFORMS } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';
import { killAll, type Worker } from '../redis/workers';
import {
  payloadOf,
  rawUpload,
  serverState,
  startUploadServer,
  type ServerState,
  upload,
  type UploadResult,
} from './upload-client';

const TWO_MB = 2 * 1024 * 1024;
/** `bodyLingerMs` of the servers here: shortened from the 2 s default. */
const LINGER = 1000;
/** A body that fits the lingering bounds: the server reads all of it after the 503. */
const SMALL = 256 * 1024;

async function closedEntry(url: string, id: string): Promise<ServerState['seen'][number]> {
  let entry: ServerState['seen'][number] | undefined;
  await waitFor(
    async () =>
      (entry = (await serverState(url)).seen.find(
        (s) => s.id === id && s.socketBytesRead !== undefined,
      )) !== undefined,
    20_000,
    `server to close the connection of ${id}`,
  );
  return entry!;
}

/**
 * The lingering close after a rejection of an upload whose body was not read (queue full here):
 * the server answers at once, then reads and discards the rest of the body within bounds.
 * A body that ends within them leaves a keep-alive connection usable, or is closed cleanly
 * (FIN) when the client asked to close; a client that keeps trickling is cut off `LINGER`
 * after the answer.
 */
describe.each(PLATFORMS)('lingering close of rejected uploads on %s', (platform) => {
  const children = new Set<ChildProcess>();
  let server: Worker;
  let holder: Promise<UploadResult>;
  let waiter: ReturnType<typeof rawUpload>;
  beforeAll(async () => {
    server = await startUploadServer(
      {
        platform,
        parse: 'balancer',
        capacity: 1,
        maxQueue: 1,
        queueTimeout: 60,
        work: 'hold',
        bodyLingerMs: LINGER,
      },
      children,
    );
    holder = upload(server.url, 0, payloadOf(1024));
    await waitFor(async () => (await serverState(server.url)).handler.running === 1);
    waiter = rawUpload(server.url, { id: 'waiter', declared: TWO_MB, send: TWO_MB });
    await waitFor(async () => (await poolStats(server.url, '/upload')).queued === 1);
  });
  afterAll(async () => {
    waiter.socket.destroy();
    await killAll(children);
  });

  it('a client that keeps trickling its body after the 503 is cut off LINGER later', async () => {
    const slow = rawUpload(server.url, {
      id: 'trickle',
      declared: TWO_MB,
      send: TWO_MB,
      rate: 20 * 1024,
    });
    const res = await slow.response;
    const answeredAt = Date.now();
    expect(res.status).toBe(503);
    await waitFor(
      () => slow.ended() !== undefined,
      LINGER + 10_000,
      'the server to close the trickling connection',
    );
    // The server closed it (the client never stops on its own), still mid-body, after about
    // LINGER: the answer reached the client well before the cut.
    expect(slow.sent()).toBeLessThan(TWO_MB);
    const lingered = slow.ended()!.at - answeredAt;
    expect(lingered).toBeGreaterThanOrEqual(LINGER - 250);
    expect(lingered).toBeLessThan(LINGER + 5000);
    const seen = await closedEntry(server.url, 'trickle');
    expect(seen.status).toBe(503);
    expect(seen.closedAfterMs!).toBeGreaterThanOrEqual(LINGER - 10);
    slow.socket.destroy();
  });

  it('a body that ends within the bounds is discarded and the connection stays usable', async () => {
    const client = rawUpload(server.url, { id: 'keep', declared: SMALL, send: SMALL });
    const res = await client.response;
    expect([res.status, Number(res.headers['retry-after']) > 0]).toEqual([503, true]);
    expect(res.headers.connection).toBe('keep-alive');
    // Once the server has read the whole body, the next request on the connection is served.
    await waitFor(() => client.sent() === SMALL);
    client.socket.write(`GET /balancer/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await waitFor(
      () => /HTTP\/1\.1 200 /.test(client.received()),
      10_000,
      'the second response on the same connection',
    );
    expect(client.ended()).toBeUndefined();
    client.socket.destroy();
    const seen = await closedEntry(server.url, 'keep');
    expect(seen.socketBytesRead!).toBeGreaterThan(SMALL);
  });

  it('a client that asked to close gets its 503, then a clean close once its body is read', async () => {
    const client = rawUpload(server.url, {
      id: 'close',
      declared: SMALL,
      send: SMALL,
      headers: { Connection: 'close' },
    });
    const res = await client.response;
    expect([res.status, Number(res.headers['retry-after']) > 0]).toEqual([503, true]);
    // Node would close at once after a `Connection: close` answer, body unread; this answer says
    // keep-alive so that the server can read the body first, and then it closes as asked.
    expect(res.headers.connection).toBe('keep-alive');
    await waitFor(() => client.ended() !== undefined, LINGER + 10_000, 'the server to close');
    // A FIN after the whole body was read, not a reset: and well before LINGER.
    expect(client.ended()!.how).toBe('end');
    const seen = await closedEntry(server.url, 'close');
    expect(seen.socketBytesRead!).toBeGreaterThan(SMALL);
    expect(seen.closedAfterMs!).toBeLessThan(LINGER);
  });

  it('the upload that held the slot all along completes once the handler is let go', async () => {
    waiter.socket.destroy();
    await fetch(`${server.url}/test/open`, { method: 'POST' });
    expect((await holder).status).toBe(200);
  });
});
