import {
  Controller,
  Get,
  Module,
  ParseIntPipe,
  Post,
  Query,
  Res,
  StreamableFile,
  type Type,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Balanced, BalancerModule } from '../../src';
import {
  ADMISSION_CASES,
  startApp,
  type AdmissionMode,
  type RunningApp,
} from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

/** Shared state the handlers report into; reset per test. */
const state = {
  hold: new Latch(),
  inFlight: 0,
  peak: 0,
  started: [] as number[],
  calls: 0,
  stream: null as Readable | null,
  responseClosed: false,
};

function reset(): void {
  state.hold = new Latch();
  state.inFlight = 0;
  state.peak = 0;
  state.started = [];
  state.calls = 0;
  state.stream = null;
  state.responseClosed = false;
}

@Controller()
class AdmissionController {
  @Post('cap3')
  @Balanced({ capacity: 3 })
  async cap3(@Query('id') id: string): Promise<{ id: number }> {
    state.calls++;
    state.inFlight++;
    state.peak = Math.max(state.peak, state.inFlight);
    state.started.push(Number(id));
    await state.hold.promise;
    await new Promise((r) => setTimeout(r, 5));
    state.inFlight--;
    return { id: Number(id) };
  }

  /** Per-endpoint timeout in @Balanced: 0.3 s while the global one is 30 s. */
  @Get('short-wait')
  @Balanced({ capacity: 1, queueTimeout: 0.3 })
  async shortWait(): Promise<string> {
    state.calls++;
    await state.hold.promise;
    return 'ok';
  }

  /** options.endpoints sets queueTimeout 0.2, overriding @Balanced's 60. */
  @Get('options-wins')
  @Balanced({ capacity: 1, queueTimeout: 60 })
  async optionsWins(): Promise<string> {
    await state.hold.promise;
    return 'ok';
  }

  @Get('bounded')
  @Balanced({ capacity: 1, maxQueue: 1 })
  async bounded(): Promise<string> {
    await state.hold.promise;
    return 'ok';
  }

  @Get('abortable')
  @Balanced({ capacity: 1 })
  async abortable(): Promise<string> {
    state.calls++;
    await state.hold.promise;
    return 'ok';
  }

  @Get('throws')
  @Balanced({ capacity: 1 })
  throws(): never {
    throw new Error('handler failure (expected by the test)');
  }

  @Get('stream')
  @Balanced({ capacity: 1 })
  stream(): StreamableFile {
    const s = new Readable({ read() {} });
    state.stream = s;
    s.push('first chunk\n');
    return new StreamableFile(s, { type: 'text/plain' });
  }

  /** A pipe rejects before the handler runs. */
  @Get('parsed')
  @Balanced({ capacity: 1 })
  parsed(@Query('n', ParseIntPipe) n: number): { n: number } {
    state.calls++;
    return { n };
  }

  /** Notes when the client's connection closes while the handler is still running. */
  @Get('midway')
  @Balanced({ capacity: 1 })
  async midway(@Res({ passthrough: true }) res: ServerResponse | { raw: ServerResponse }) {
    state.calls++;
    const raw = 'raw' in res ? res.raw : res;
    raw.once('close', () => (state.responseClosed = true));
    await state.hold.promise;
    return 'done';
  }

  @Get('plain')
  plain(): string {
    return 'plain';
  }
}

function admissionApp(admission: AdmissionMode): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        healthEndpoint: false,
        queueTimeout: 30,
        logger: false,
        admission,
        endpoints: { '/options-wins': { queueTimeout: 0.2 } },
      }),
    ],
    controllers: [AdmissionController],
  })
  class AdmissionAppModule {}
  return AdmissionAppModule;
}

describe.each(ADMISSION_CASES)('admission on %s (%s path)', (platform, admission) => {
  let app: RunningApp;

  beforeAll(async () => {
    app = await startApp(platform, admissionApp(admission));
  });
  afterAll(async () => {
    state.hold.open();
    await app.close();
  });
  beforeEach(() => reset());
  afterEach(() => state.hold.open());

  it('admits at most the capacity at once and serves the queue in arrival order', async () => {
    const send = (id: number) => fetch(`${app.url}/cap3?id=${id}`, { method: 'POST' });
    const pending: Array<Promise<Response>> = [];
    for (let id = 1; id <= 20; id++) {
      pending.push(send(id));
      // Wait until this request is inside (first 3) or queued, so arrival order is known.
      await waitFor(
        async () => {
          const s = await poolStats(app.url, '/cap3');
          return s.active_requests + s.queued === id;
        },
        10_000,
        `request ${id} to arrive`,
      );
    }
    const s = await poolStats(app.url, '/cap3');
    expect(s.active_requests).toBe(3);
    expect(s.queued).toBe(17);
    state.hold.open();
    const responses = await Promise.all(pending);
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(state.peak).toBe(3);
    expect(state.started.slice(0, 3).sort((a, b) => a - b)).toEqual([1, 2, 3]);
    expect(state.started.slice(3)).toEqual(Array.from({ length: 17 }, (_, i) => i + 4));
    await waitFor(async () => (await poolStats(app.url, '/cap3')).active_requests === 0);
  });

  it('keeps 20 simultaneous requests at a peak of exactly 3', async () => {
    state.hold.open();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${app.url}/cap3?id=${i}`, { method: 'POST' })),
    );
    expect(responses.every((r) => r.status === 201)).toBe(true);
    expect(state.peak).toBe(3);
  });

  it('answers 504 with Retry-After when the queue wait passes the per-endpoint timeout', async () => {
    const first = fetch(`${app.url}/short-wait`);
    await waitFor(async () => (await poolStats(app.url, '/short-wait')).active_requests === 1);
    const before = Date.now();
    const second = await fetch(`${app.url}/short-wait`);
    expect(second.status).toBe(504);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(Date.now() - before).toBeGreaterThanOrEqual(250);
    const body = (await second.json()) as { reason: string; statusCode: number };
    expect(body).toMatchObject({ statusCode: 504, reason: 'queue_timeout' });
    state.hold.open();
    expect((await first).status).toBe(200);
    const s = await poolStats(app.url, '/short-wait');
    expect(s.timed_out).toBeGreaterThanOrEqual(1);
    expect(state.calls).toBe(1);
  });

  it('lets options.endpoints override the @Balanced() queue timeout', async () => {
    const first = fetch(`${app.url}/options-wins`);
    await waitFor(async () => (await poolStats(app.url, '/options-wins')).active_requests === 1);
    const second = await fetch(`${app.url}/options-wins`);
    expect(second.status).toBe(504);
    state.hold.open();
    await first;
  });

  it('rejects with 503 at once when the queue is full', async () => {
    const first = fetch(`${app.url}/bounded`);
    await waitFor(async () => (await poolStats(app.url, '/bounded')).active_requests === 1);
    const second = fetch(`${app.url}/bounded`);
    await waitFor(async () => (await poolStats(app.url, '/bounded')).queued === 1);
    const third = await fetch(`${app.url}/bounded`);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('30');
    expect(((await third.json()) as { reason: string }).reason).toBe('queue_full');
    state.hold.open();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });

  it('drops a queued request whose client went away: its handler never runs', async () => {
    const first = fetch(`${app.url}/abortable`);
    await waitFor(async () => (await poolStats(app.url, '/abortable')).active_requests === 1);
    const ac = new AbortController();
    const gone = fetch(`${app.url}/abortable`, { signal: ac.signal }).catch((e: Error) => e);
    await waitFor(async () => (await poolStats(app.url, '/abortable')).queued === 1);
    ac.abort();
    expect(await gone).toMatchObject({ name: 'AbortError' });
    await waitFor(async () => (await poolStats(app.url, '/abortable')).queued === 0);
    state.hold.open();
    expect((await first).status).toBe(200);
    expect((await fetch(`${app.url}/abortable`)).status).toBe(200);
    expect(state.calls).toBe(2);
    const s = await poolStats(app.url, '/abortable');
    expect(s.active_requests).toBe(0);
    expect(s.available_slots).toBe(1);
  });

  it('gives the slot back when the handler throws', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${app.url}/throws`)).status).toBe(500);
    }
    const s = await poolStats(app.url, '/throws');
    expect(s.active_requests).toBe(0);
    expect(s.admitted).toBe(3);
  });

  it('holds the slot while a streamed body is still being sent', async () => {
    const res = await fetch(`${app.url}/stream`);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('first chunk');
    // Headers and a chunk are out, the stream is still open: the slot must still be held.
    expect((await poolStats(app.url, '/stream')).active_requests).toBe(1);
    state.stream!.push('second chunk\n');
    state.stream!.push(null);
    let rest = '';
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      rest += new TextDecoder().decode(chunk.value);
    }
    expect(rest).toContain('second chunk');
    await waitFor(async () => (await poolStats(app.url, '/stream')).active_requests === 0);
  });

  it('releases a slot once when a stream is cut off by the client', async () => {
    const ac = new AbortController();
    const res = await fetch(`${app.url}/stream`, { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    expect((await poolStats(app.url, '/stream')).active_requests).toBe(1);
    ac.abort();
    await waitFor(async () => (await poolStats(app.url, '/stream')).active_requests === 0);
    state.stream?.destroy();
    expect((await poolStats(app.url, '/stream')).available_slots).toBe(1);
  });

  it('releases the slot when a pipe rejects the request before the handler runs', async () => {
    const bad = await fetch(`${app.url}/parsed?n=abc`);
    expect(bad.status).toBe(400);
    await waitFor(async () => (await poolStats(app.url, '/parsed')).active_requests === 0);
    expect(state.calls).toBe(0);
    const good = await fetch(`${app.url}/parsed?n=7`);
    expect(good.status).toBe(200);
    expect(await good.json()).toEqual({ n: 7 });
    await waitFor(async () => (await poolStats(app.url, '/parsed')).active_requests === 0);
    expect((await poolStats(app.url, '/parsed')).available_slots).toBe(1);
  });

  it('keeps the slot while the handler still runs after its client hung up', async () => {
    const ac = new AbortController();
    const gone = fetch(`${app.url}/midway`, { signal: ac.signal }).catch((e: Error) => e);
    await waitFor(() => state.calls === 1, 10_000, 'the handler to start');
    ac.abort();
    expect(await gone).toMatchObject({ name: 'AbortError' });
    await waitFor(() => state.responseClosed, 10_000, 'the server to see the close');
    // The work is still on the machine: the slot stays taken.
    const held = await poolStats(app.url, '/midway');
    expect(held.active_requests).toBe(1);
    expect(held.available_slots).toBe(0);
    state.hold.open();
    await waitFor(async () => (await poolStats(app.url, '/midway')).active_requests === 0);
    expect((await poolStats(app.url, '/midway')).available_slots).toBe(1);
  });

  it('leaves unwatched routes alone', async () => {
    const res = await fetch(`${app.url}/plain`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('plain');
  });
});
