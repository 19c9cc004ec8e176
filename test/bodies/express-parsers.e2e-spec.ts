import { Body, Controller, HttpCode, Module, Post, type Type } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { request, type ClientRequest } from 'node:http';
import { Balanced, BalancerModule } from '../../src';
import {
  CapturingLogger,
  startApp,
  type RunningApp,
  type StartOptions,
} from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

type Handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;
const express = createRequire(__filename)('express') as { json(o: { limit: string }): Handler };

let hold = new Latch();

@Controller()
class UploadController {
  @Post('upload')
  @HttpCode(200)
  @Balanced({ capacity: 1 })
  async upload(@Body() body: { id: string }): Promise<{ id: string }> {
    await hold.promise;
    return { id: body.id };
  }
}

@Module({
  imports: [BalancerModule.forRoot({ healthEndpoint: false, ui: { enable: false } })],
  controllers: [UploadController],
})
class UploadModule {}

/**
 * What the Express early step relies on, pinned on this Nest: it is mounted through
 * `HttpAdapterHost.init$` when Nest sets the adapter, which comes before Nest registers its
 * body parsers in `init()` and before anything `main.ts` does with the app. A request whose body
 * has not been sent yet can only reach the queue if no parser stands before admission.
 */
const SETUPS: Array<[string, StartOptions]> = [
  ["Nest's default parser", {}],
  [
    "app.useBodyParser('json', { limit })",
    { setup: (a) => (a as NestExpressApplication).useBodyParser('json', { limit: '10mb' }) },
  ],
  [
    'app.use(express.json()) in main.ts',
    { bodyParser: false, setup: (a) => a.use(express.json({ limit: '10mb' })) },
  ],
];

describe.each(SETUPS)('Express with %s', (_name, options) => {
  let app: RunningApp;
  const logger = new CapturingLogger();
  /** The upload whose body is held back: destroyed after the test, so a failure cannot hang. */
  let pending: ClientRequest | undefined;

  beforeAll(async () => {
    app = await startApp('express', UploadModule as Type, { ...options, logger });
  });
  afterAll(async () => {
    hold.open();
    pending?.destroy();
    await app?.close();
  });

  it('queues an upload before its body is sent, then parses and serves it', async () => {
    hold = new Latch();
    const holder = fetch(`${app.url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'holder' }),
    });
    await waitFor(async () => (await poolStats(app.url, '/upload')).active_requests === 1);
    const body = JSON.stringify({ id: 'late' });
    const { port } = new URL(app.url);
    let send!: (b: string) => void;
    const late = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/upload',
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.flushHeaders();
      pending = req;
      send = (b) => req.end(b);
    });
    await waitFor(
      async () => (await poolStats(app.url, '/upload')).queued === 1,
      10_000,
      'the upload to queue with its body unsent',
    );
    send(body);
    hold.open();
    expect((await holder).status).toBe(200);
    const answer = await late;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ id: 'late' });
    expect(logger.messages()).toContain('POST /upload: admitted before its body is read');
    expect(logger.messages('warn').filter((m) => m.includes('body was read'))).toEqual([]);
  });
});

describe('Express with a parser on the instance passed to the adapter', () => {
  it('is admitted after that parser: logged once, the body counted against maxQueueBytes', async () => {
    const { ExpressAdapter } = await import('@nestjs/platform-express');
    const { Test } = await import('@nestjs/testing');
    const logger = new CapturingLogger();
    const expressApp = createRequire(__filename)('express') as () => {
      use(h: Handler): unknown;
    };
    const instance = expressApp();
    instance.use(express.json({ limit: '10mb' }));
    const ref = await Test.createTestingModule({ imports: [UploadModule] })
      .setLogger(logger)
      .compile();
    const nest = ref.createNestApplication(new ExpressAdapter(instance as never), { logger });
    await nest.listen(0, '127.0.0.1');
    try {
      const url = `http://127.0.0.1:${(nest.getHttpServer().address() as { port: number }).port}`;
      hold = new Latch();
      const post = (id: string) =>
        fetch(`${url}/upload`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id }),
        });
      const holder = post('holder');
      await waitFor(async () => (await poolStats(url, '/upload')).active_requests === 1);
      const waiting = post('waiting');
      await waitFor(async () => (await poolStats(url, '/upload')).queued === 1);
      const stats = (await poolStats(url, '/upload')) as unknown as Record<string, number>;
      expect(stats.queued_bytes).toBe(JSON.stringify({ id: 'waiting' }).length);
      hold.open();
      expect((await holder).status).toBe(200);
      expect((await waiting).status).toBe(200);
      expect(logger.messages('warn').filter((m) => m.includes('body was read'))).toHaveLength(1);
    } finally {
      await nest.close();
    }
  });
});
