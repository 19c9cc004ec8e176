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
  uploadBytes,
  type UploadResult,
} from './upload-client';

const TWO_MB = 2 * 1024 * 1024;

/** Hold the only slot with a small upload; resolves (with its pending result) when it runs. */
async function holdSlot(url: string): Promise<{ result: Promise<UploadResult> }> {
  const result = upload(url, 0, payloadOf(1024));
  await waitFor(async () => (await serverState(url)).handler.running === 1, 20_000, 'holder');
  return { result };
}

async function seenOf(url: string, id: string): Promise<ServerState['seen'][number]> {
  let entry: ServerState['seen'][number] | undefined;
  await waitFor(
    async () => (entry = (await serverState(url)).seen.find((s) => s.id === id)) !== undefined,
    20_000,
    `server to finish request ${id}`,
  );
  return entry!;
}

/**
 * A rejection of an upload whose client is still pushing its body: answered (with
 * `Retry-After`) without reading the body, and the connection closed. Read from the server's
 * record of the response: the client, still writing when the server closes, may get a reset
 * (EPIPE) before it reads the answer, which says nothing about what the server did.
 */
function expectAnsweredUnread(seen: ServerState['seen'][number], status: number): void {
  expect(seen.status).toBe(status);
  expect(seen.connection).toBe('close');
  expect(Number(seen.retryAfter)).toBeGreaterThan(0);
  expect(seen.complete).toBe(false);
  expect(seen.bytesRead).toBeLessThan(TWO_MB / 4);
}

/**
 * Uploads admitted before their bodies are read (Express: `{ bodyParser: false }` and the
 * balancer's `bodyParser` option): a client that leaves while waiting frees its place, 504 and
 * queue-full rejections are answered without the body (`Connection: close`).
 */
describe.each(PLATFORMS)('waiting uploads on %s', (platform) => {
  const children = new Set<ChildProcess>();
  afterAll(() => killAll(children));

  describe('capacity 1, queue of 1', () => {
    let server: Worker;
    let holder: { result: Promise<UploadResult> };
    beforeAll(async () => {
      server = await startUploadServer(
        { platform, parse: 'balancer', capacity: 1, maxQueue: 1, queueTimeout: 60, work: 'hold' },
        children,
      );
      holder = await holdSlot(server.url);
    });

    it('a client that aborts while its upload waits frees its place; its body was not read', async () => {
      const gone = rawUpload(server.url, { id: 'gone', declared: TWO_MB, send: TWO_MB });
      await waitFor(async () => (await poolStats(server.url, '/upload')).queued === 1);
      gone.socket.destroy();
      await waitFor(
        async () => (await poolStats(server.url, '/upload')).queued === 0,
        10_000,
        'the aborted upload to leave the queue',
      );
      const seen = await seenOf(server.url, 'gone');
      expect(seen.complete).toBe(false);
      expect(seen.bytesRead).toBeLessThan(TWO_MB / 4);
      expect((await serverState(server.url)).handler.calls).toBe(1);
    });

    it('queue full: 503 at once, without reading the body, and the connection closes', async () => {
      const waiter = rawUpload(server.url, { id: 'waiter', declared: TWO_MB, send: TWO_MB });
      await waitFor(async () => (await poolStats(server.url, '/upload')).queued === 1);
      // The client keeps pushing its 2 MB body: the answer must not wait for it or read it.
      rawUpload(server.url, { id: 'full', declared: TWO_MB, send: TWO_MB });
      expectAnsweredUnread(await seenOf(server.url, 'full'), 503);
      waiter.socket.destroy();
    });

    afterAll(async () => {
      await fetch(`${server.url}/test/open`, { method: 'POST' });
      expect((await holder.result).status).toBe(200);
    });
  });

  it('queue timeout: 504 without reading the body, and the connection closes', async () => {
    const server = await startUploadServer(
      { platform, parse: 'balancer', capacity: 1, queueTimeout: 0.5, work: 'hold' },
      children,
    );
    const holder = await holdSlot(server.url);
    // The client keeps pushing its 2 MB body while it waits: none of it is read.
    rawUpload(server.url, { id: 'late', declared: TWO_MB, send: TWO_MB });
    expectAnsweredUnread(await seenOf(server.url, 'late'), 504);
    await fetch(`${server.url}/test/open`, { method: 'POST' });
    expect((await holder.result).status).toBe(200);
    expect((await serverState(server.url)).handler.calls).toBe(1);
  });
});

/**
 * `maxQueueBytes` bounds the bodies that wait already read. Early admission is off on Express
 * when the app parses bodies itself (Nest's default): there the budget holds and the overflow
 * gets 503 at once. On Fastify waiting bodies are not read, so they do not count.
 */
describe.each(PLATFORMS)('maxQueueBytes on %s', (platform) => {
  const children = new Set<ChildProcess>();
  afterAll(() => killAll(children));

  it('bodies read before admission are bounded (Express: 503 past the budget; Fastify: not read, not counted)', async () => {
    const server = await startUploadServer(
      {
        platform,
        parse: 'app',
        capacity: 1,
        queueTimeout: 60,
        maxQueueBytes: 5 * 1024 * 1024,
        work: 'hold',
      },
      children,
    );
    const holder = await holdSlot(server.url);
    const payload = payloadOf(TWO_MB);
    const waiting = [upload(server.url, 1, payload), upload(server.url, 2, payload)];
    await waitFor(async () => (await poolStats(server.url, '/upload')).queued === 2);
    const third = upload(server.url, 3, payload);
    if (platform === 'express') {
      const over = await third;
      expect(over.status).toBe(503);
      expect(JSON.parse(over.body)).toMatchObject({ reason: 'queue_full' });
      const stats = (await poolStats(server.url, '/upload')) as unknown as Record<string, number>;
      expect(stats.queued).toBe(2);
      expect(stats.queued_bytes).toBeGreaterThan(2 * TWO_MB);
      expect(stats.queued_bytes).toBeLessThanOrEqual(stats.max_queue_bytes);
    } else {
      // Fastify admits before parsing: waiting bodies are not in memory and not counted.
      await waitFor(async () => (await poolStats(server.url, '/upload')).queued === 3);
      const stats = (await poolStats(server.url, '/upload')) as unknown as Record<string, number>;
      expect(stats.queued_bytes).toBe(0);
      waiting.push(third);
    }
    await fetch(`${server.url}/test/open`, { method: 'POST' });
    expect((await holder.result).status).toBe(200);
    for (const r of await Promise.all(waiting)) {
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ id: r.id, sha256: r.expected });
    }
    // The waiters were served: nothing of theirs is counted any more.
    const after = (await poolStats(server.url, '/upload')) as unknown as Record<string, number>;
    expect([after.queued, after.queued_bytes]).toEqual([0, 0]);
  });

  it('stats and /balancer/metrics show the bytes of the bodies that wait', async () => {
    const budget = 8 * 1024 * 1024;
    const server = await startUploadServer(
      {
        platform,
        parse: 'app',
        capacity: 1,
        queueTimeout: 60,
        maxQueueBytes: budget,
        work: 'hold',
        metrics: true,
      },
      children,
    );
    const holder = await holdSlot(server.url);
    const payload = payloadOf(TWO_MB);
    const waiting = [upload(server.url, 1, payload), upload(server.url, 2, payload)];
    await waitFor(async () => (await poolStats(server.url, '/upload')).queued === 2);
    // Express parsed both bodies before the guard; Fastify admits before parsing (nothing read).
    const expected = platform === 'express' ? uploadBytes(1, payload) + uploadBytes(2, payload) : 0;
    const stats = (await poolStats(server.url, '/upload')) as unknown as Record<string, number>;
    expect([stats.queued_bytes, stats.max_queue_bytes]).toEqual([expected, budget]);
    const metrics = await (await fetch(`${server.url}/balancer/metrics`)).text();
    expect(gauge(metrics, 'balancer_queued_body_bytes')).toBe(expected);
    expect(gauge(metrics, 'balancer_max_queue_body_bytes')).toBe(budget);

    await fetch(`${server.url}/test/open`, { method: 'POST' });
    expect((await holder.result).status).toBe(200);
    for (const r of await Promise.all(waiting)) expect(r.status).toBe(200);
    const served = await (await fetch(`${server.url}/balancer/metrics`)).text();
    expect(gauge(served, 'balancer_queued_body_bytes')).toBe(0);
  });
});

/** The value of a per-pool gauge of the `/upload` pool in Prometheus text. */
function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name}\\{pool="/upload"\\} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name} for /upload in:\n${text}`);
  return Number(m[1]);
}
