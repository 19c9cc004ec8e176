import { Controller, Get, Module, Post } from '@nestjs/common';
import { AdmissionGate, Balanced, BalancerModule, CapacityStore } from '../../src';
import { PLATFORMS } from '../harness/platforms';
import { WorkLatch, startHealthApp, waitFor, within, type HealthApp } from './health-fixtures';

const work = new WorkLatch();
/** Handlers that got past the latch. */
let finished = 0;

@Controller()
class AppController {
  @Post('work')
  @Balanced({ capacity: 2 })
  async work(): Promise<{ ok: true }> {
    await work.wait();
    finished++;
    return { ok: true };
  }

  @Get('free')
  free(): { ok: true } {
    return { ok: true };
  }
}

function appModule(drainTimeout: number): new () => unknown {
  @Module({
    imports: [
      BalancerModule.forRoot({
        probeOnStartup: false,
        healthEndpoint: false,
        queueTimeout: 20,
        drainTimeout,
      }),
    ],
    controllers: [AppController],
  })
  class ShutdownAppModule {}
  return ShutdownAppModule;
}

const post = (url: string): Promise<Response> => fetch(`${url}/work`, { method: 'POST' });

describe.each(PLATFORMS)('graceful shutdown (%s)', (platform) => {
  let h: HealthApp | undefined;

  beforeEach(() => {
    work.reset();
    finished = 0;
  });
  afterEach(async () => {
    work.open();
    await h?.close();
    h = undefined;
  });

  it('app.close() during load: in-flight finish, queued and new requests get 503, nothing hangs', async () => {
    h = await startHealthApp(platform, appModule(20));
    const { url } = h;
    const store = h.app.get<CapacityStore>(CapacityStore);
    const gate = h.app.get(AdmissionGate);

    const inFlight = [post(url), post(url)];
    await waitFor(() => work.entered === 2, 10_000, 'two requests in the handler');
    const queued = [post(url), post(url), post(url)];
    await waitFor(
      async () => (await store.snapshot('/work')).queued === 3,
      10_000,
      'three requests queued',
    );

    let closed = false;
    const closing = h.close().then(() => (closed = true));
    await waitFor(() => gate.isShuttingDown, 10_000, 'shutdown started');

    const queuedAnswers = await within(Promise.all(queued), 10_000, 'queued requests');
    expect(queuedAnswers.map((r) => r.status)).toEqual([503, 503, 503]);
    for (const r of queuedAnswers) expect(r.headers.get('retry-after')).toBe('5');

    const late = await post(url);
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('5');
    // Unwatched routes keep working while in-flight requests drain.
    expect((await fetch(`${url}/free`)).status).toBe(200);
    expect(closed).toBe(false);
    expect(store.localActive()).toBe(2);
    expect(work.entered).toBe(2);

    work.open();
    const done = await within(Promise.all(inFlight), 10_000, 'in-flight requests');
    expect(done.map((r) => r.status)).toEqual([201, 201]);
    await within(closing, 10_000, 'app.close()');
    expect(store.localActive()).toBe(0);
  });

  it('stops waiting at drainTimeout and releases the slots of requests that outlive it', async () => {
    // Without forceCloseConnections the HTTP server itself waits for every open request.
    h = await startHealthApp(platform, appModule(0.3), { forceCloseConnections: true });
    const { url, logs } = h;
    const store = h.app.get<CapacityStore>(CapacityStore);

    const stuck = post(url).then(
      (r) => r.status,
      () => 'connection closed',
    );
    await waitFor(() => work.entered === 1, 10_000, 'request in the handler');
    await within(h.close(), 10_000, 'app.close() past the drain timeout');
    expect(store.localActive()).toBe(0);
    expect(await within(stuck, 10_000, 'stuck client')).toBe('connection closed');
    expect(logs.warnings('drain timeout: 1 request(s) still running')).toHaveLength(1);
    // The handler ends after the store closed: its late release must not count twice.
    work.open();
    await waitFor(() => finished === 1, 10_000, 'late handler finished');
    expect((await store.snapshot('/work')).active).toBe(0);
    expect(store.localActive()).toBe(0);
  });
});
