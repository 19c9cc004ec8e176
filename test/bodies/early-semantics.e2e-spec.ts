import { Body, Controller, HttpCode, Module, Post, Req, type Type } from '@nestjs/common';
import { request, type IncomingMessage } from 'node:http';
import { Balanced, BalancerModule } from '../../src';
import {
  ADMISSION_CASES,
  startApp,
  type AdmissionMode,
  type RunningApp,
} from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

const state = { hold: new Latch(), running: 0, done: 0, closed: false };

@Controller()
class EchoController {
  @Post('echo')
  @HttpCode(200)
  @Balanced({ capacity: 1 })
  async echo(
    @Body() body: { n: number },
    @Req() req: IncomingMessage | { raw: IncomingMessage },
  ): Promise<{ n: number }> {
    const raw = 'raw' in req ? req.raw : req;
    raw.socket.once('close', () => (state.closed = true));
    state.running++;
    await state.hold.promise;
    state.running--;
    state.done++;
    return { n: body.n };
  }
}

function appModule(admission: AdmissionMode): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        healthEndpoint: false,
        ui: { enable: false },
        logger: false,
        admission,
        bodyParser: { limit: '1mb' },
      }),
    ],
    controllers: [EchoController],
  })
  class EarlySemanticsModule {}
  return EarlySemanticsModule;
}

/**
 * Admitted before the body is read (Express with `{ bodyParser: false }` and the balancer's
 * parser; Fastify as is), with either attach mode: the handler still gets its parsed body, the
 * queue is FIFO, and a client that hangs up mid-handler does not free the slot while the work
 * still runs.
 */
describe.each(ADMISSION_CASES)('early admission on %s (%s path)', (platform, admission) => {
  let app: RunningApp;
  beforeEach(async () => {
    state.hold = new Latch();
    state.running = 0;
    state.done = 0;
    state.closed = false;
    app = await startApp(platform, appModule(admission), { bodyParser: platform !== 'express' });
  });
  afterEach(async () => {
    state.hold.open();
    await app.close();
  });

  it('parses the body after the grant and serves waiters in order', async () => {
    const post = (n: number) =>
      fetch(`${app.url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n }),
      });
    const first = post(1);
    await waitFor(() => state.running === 1);
    const second = post(2);
    await waitFor(async () => (await poolStats(app.url, '/echo')).queued === 1);
    state.hold.open();
    expect(await (await first).json()).toEqual({ n: 1 });
    expect(await (await second).json()).toEqual({ n: 2 });
  });

  it('a client that hangs up mid-handler keeps the slot held until the handler settles', async () => {
    const { port } = new URL(app.url);
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/echo',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ n: 7 }));
    await waitFor(() => state.running === 1);
    req.destroy();
    await waitFor(() => state.closed, 10_000, 'the server to see the connection close');
    // The connection is gone but the work runs: the slot stays taken.
    expect((await poolStats(app.url, '/echo')).active_requests).toBe(1);
    expect(state.done).toBe(0);
    state.hold.open();
    await waitFor(() => state.done === 1);
    await waitFor(async () => (await poolStats(app.url, '/echo')).active_requests === 0);
  });
});
