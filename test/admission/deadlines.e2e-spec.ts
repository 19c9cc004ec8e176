import { Controller, Injectable, Module, Post, Query, type Type } from '@nestjs/common';
import {
  Balanced,
  BalancerDeadlineException,
  BalancerModule,
  BalancerService,
  BalancerUnavailableException,
  DeadlineExceededError,
  DeadlineSignal,
} from '../../src';
import {
  CapturingLogger,
  PLATFORMS,
  startApp,
  type PlatformName,
  type RunningApp,
} from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

/*
 * Deadlines end to end, on both adapters and both stores: a queued request leaves the queue at
 * its deadline (504 deadline), one whose predicted wait exceeds its time left is refused at
 * arrival once the drain rate is measured (503 deadline_unreachable + Retry-After), the
 * handler's @DeadlineSignal() and run()'s signal fire at the deadline, and a malformed header
 * means no deadline. Every case ends with the pool's slots back.
 */

const HEADER = 'x-request-timeout-ms';

/** The model: a call runs `ms` (or until `hold` opens) unless its signal aborts it first. */
const model = {
  hold: new Latch(),
  running: 0,
  /** What each call's signal said when it ended: the reason when aborted. */
  ended: [] as Array<{ id: string; aborted: boolean; reason?: unknown; ranMs: number }>,
  async call(id: string, signal: AbortSignal, ms?: number): Promise<{ aborted: boolean }> {
    this.running++;
    const start = performance.now();
    try {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = ms === undefined ? undefined : setTimeout(done, ms);
        void this.hold.promise.then(done);
        signal.addEventListener('abort', done, { once: true });
      });
    } finally {
      this.running--;
    }
    const ranMs = performance.now() - start;
    this.ended.push({ id, aborted: signal.aborted, reason: signal.reason, ranMs });
    return { aborted: signal.aborted };
  },
  reset(): void {
    this.hold.open();
    this.hold = new Latch();
    this.ended = [];
  },
};

@Controller()
class LlmController {
  @Post('llm')
  @Balanced({ capacity: 1, deadlineHeader: HEADER })
  llm(
    @Query('id') id: string,
    @Query('ms') ms: string | undefined,
    @DeadlineSignal() s: AbortSignal,
  ) {
    return model.call(id, s, ms === undefined ? undefined : Number(ms));
  }

  /** A pool that never saw a grant from its queue: nothing to predict from. */
  @Post('cold')
  @Balanced({ capacity: 1, deadlineHeader: HEADER })
  cold(@Query('id') id: string, @DeadlineSignal() s: AbortSignal) {
    return model.call(id, s);
  }

  /** Watched through `endpoints` with the grpc-timeout header. */
  @Post('grpc')
  grpc(@Query('id') id: string, @DeadlineSignal() s: AbortSignal) {
    return model.call(id, s);
  }
}

@Injectable()
class Consumer {
  constructor(readonly balancer: BalancerService) {}
}

type StoreName = 'memory' | 'redis';

function appModule(storage: { type: 'memory' } | { type: 'redis'; url: string }): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        storage:
          storage.type === 'redis'
            ? { ...storage, keyPrefix: uniquePrefix('deadline'), restartHold: 0 }
            : storage,
        healthEndpoint: false,
        probeOnStartup: false,
        queueTimeout: 30,
        endpoints: { '/grpc': { capacity: 1, deadlineHeader: 'grpc-timeout' } },
      }),
    ],
    controllers: [LlmController],
    providers: [Consumer],
  })
  class DeadlineAppModule {}
  return DeadlineAppModule;
}

interface Outcome {
  status: number;
  reason?: string;
  aborted?: boolean;
  retryAfter: string | null;
  ms: number;
}

const CASES: Array<[PlatformName, StoreName]> = PLATFORMS.flatMap((p) =>
  (['memory', 'redis'] as const).map((s): [PlatformName, StoreName] => [p, s]),
);

describe.each(CASES)('deadlines on %s (%s store)', (platform, store) => {
  let app: RunningApp;
  let redis: Awaited<ReturnType<typeof sharedRedis>> | undefined;
  const logger = new CapturingLogger();

  const send = async (path: string, headers: Record<string, string> = {}): Promise<Outcome> => {
    const start = performance.now();
    const res = await fetch(`${app.url}${path}`, { method: 'POST', headers });
    const body = (await res.json().catch(() => ({}))) as { reason?: string; aborted?: boolean };
    return {
      status: res.status,
      reason: body.reason,
      aborted: body.aborted,
      retryAfter: res.headers.get('retry-after'),
      ms: performance.now() - start,
    };
  };
  const stats = (pool: string) =>
    poolStats(app.url, pool) as unknown as Promise<Record<string, number>>;
  const until = (pool: string, what: string, n: number) =>
    waitFor(async () => (await stats(pool))[what] === n, 10_000, `${pool} ${what} = ${n}`);
  /** A request holding the pool's only slot until `model.hold` opens (its outcome, unawaited). */
  const occupy = async (pool: string): Promise<{ done: Promise<Outcome> }> => {
    const done = send(`${pool}?id=holder`);
    await until(pool, 'active_requests', 1);
    return { done };
  };

  beforeAll(async () => {
    if (store === 'redis') redis = await sharedRedis();
    app = await startApp(
      platform,
      appModule(redis ? { type: 'redis', url: redis.url } : { type: 'memory' }),
      { logger },
    );
  });
  afterAll(async () => {
    model.hold.open();
    await app?.close();
    await redis?.stop();
  });
  beforeEach(() => model.reset());
  afterEach(async () => {
    model.hold.open();
    for (const pool of ['/llm', '/cold', '/grpc']) {
      await until(pool, 'active_requests', 0);
      await until(pool, 'queued', 0);
    }
  });

  it('a queued request leaves the queue at its deadline: 504 deadline, its slot never taken', async () => {
    const holder = await occupy('/llm');
    const before = await stats('/llm');
    const late = await send('/llm?id=late', { [HEADER]: '400' });
    expect(late).toMatchObject({ status: 504, reason: 'deadline', retryAfter: '30' });
    // Left at its deadline (400 ms), long before the 30 s queue timeout.
    expect(late.ms).toBeGreaterThanOrEqual(400);
    expect(late.ms).toBeLessThan(5000);
    const after = await stats('/llm');
    expect(after.deadline_expired - before.deadline_expired).toBe(1);
    expect(after.timed_out).toBe(before.timed_out);
    expect(after.queued).toBe(0);
    expect(after.active_requests).toBe(1);
    model.hold.open();
    expect((await holder.done).status).toBe(201);
    // The slot went back once: the next request is admitted at once and served.
    expect(await send('/llm?id=next&ms=1')).toMatchObject({ status: 201, aborted: false });
    expect(model.ended.map((e) => e.id)).toEqual(['holder', 'next']);
  });

  it('the grpc-timeout syntax works the same through endpoints options (YAML deadline_header)', async () => {
    const holder = await occupy('/grpc');
    const late = await send('/grpc?id=late', { 'grpc-timeout': '300m' });
    expect(late).toMatchObject({ status: 504, reason: 'deadline' });
    expect(late.ms).toBeGreaterThanOrEqual(300);
    model.hold.open();
    expect((await holder.done).status).toBe(201);
  });

  it('refuses at arrival with 503 deadline_unreachable once the drain rate is measured', async () => {
    // Warm-up: twelve calls of 40 ms through a slot of one, so the queue drains eleven times.
    const warm = await Promise.all(
      Array.from({ length: 12 }, (_, i) => send(`/llm?id=w${i}&ms=40`)),
    );
    expect(warm.map((o) => o.status)).toEqual(Array(12).fill(201));
    const holder = await occupy('/llm');
    const waiting = [send('/llm?id=q1&ms=1'), send('/llm?id=q2&ms=1'), send('/llm?id=q3&ms=1')];
    await until('/llm', 'queued', 3);
    const before = await stats('/llm');
    // Three waiting ahead at ~40 ms each: a 60 ms budget cannot be met, a minute can.
    const refused = await send('/llm?id=hopeless', { [HEADER]: '60' });
    // A 503, not the 504 a wait until its deadline would have ended in: refused at arrival.
    expect(refused).toMatchObject({ status: 503, reason: 'deadline_unreachable' });
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    const patient = send('/llm?id=patient&ms=1', { [HEADER]: '60000' });
    await until('/llm', 'queued', 4);
    const after = await stats('/llm');
    expect(after.deadline_unreachable - before.deadline_unreachable).toBe(1);
    expect(after.rejected - before.rejected).toBe(1);
    model.hold.open();
    expect((await holder.done).status).toBe(201);
    expect((await Promise.all([...waiting, patient])).map((o) => o.status)).toEqual(
      Array(4).fill(201),
    );
    expect(model.ended.map((e) => e.id)).not.toContain('hopeless');
  });

  it('refuses nothing before a drain rate is measured: the request waits until its deadline', async () => {
    const holder = await occupy('/cold');
    const waiting = send('/cold?id=q1');
    await until('/cold', 'queued', 1);
    const late = await send('/cold?id=late', { [HEADER]: '150' });
    expect(late).toMatchObject({ status: 504, reason: 'deadline' });
    expect(late.ms).toBeGreaterThanOrEqual(150);
    model.hold.open();
    expect((await holder.done).status).toBe(201);
    expect((await waiting).status).toBe(201);
    expect((await stats('/cold')).deadline_unreachable).toBe(0);
  });

  it("the handler's @DeadlineSignal() fires at the deadline; without one it never fires", async () => {
    const timed = await send('/llm?id=timed', { [HEADER]: '300' });
    expect(timed).toMatchObject({ status: 201, aborted: true });
    const call = model.ended.find((e) => e.id === 'timed')!;
    expect(call.reason).toBeInstanceOf(DeadlineExceededError);
    // The call had no end of its own: only the signal, fired no earlier than the deadline, ended it.
    expect(timed.ms).toBeGreaterThanOrEqual(300);
    expect(call.ranMs).toBeLessThan(5000);
    const free = await send('/llm?id=free&ms=350');
    expect(free).toMatchObject({ status: 201, aborted: false });
    expect(model.ended.find((e) => e.id === 'free')?.aborted).toBe(false);
  });

  it('a client that hangs up mid-call leaves the signal armed: the call still stops at the deadline', async () => {
    const gone = new AbortController();
    const sent = fetch(`${app.url}/llm?id=hungup`, {
      method: 'POST',
      headers: { [HEADER]: '400' },
      signal: gone.signal,
    }).catch(() => 'hung up');
    await until('/llm', 'active_requests', 1);
    gone.abort();
    expect(await sent).toBe('hung up');
    // The call had no end of its own: only the deadline can stop it.
    await waitFor(() => model.ended.some((e) => e.id === 'hungup'), 10_000, 'the call stopped');
    expect(model.ended[0].reason).toBeInstanceOf(DeadlineExceededError);
    await until('/llm', 'active_requests', 0);
  });

  it('a deadline already past at arrival is answered 504 deadline without a slot', async () => {
    const before = await stats('/llm');
    const gone = await send('/llm?id=gone', { 'x-request-timeout-ms': '5n' });
    expect(gone).toMatchObject({ status: 504, reason: 'deadline' });
    const after = await stats('/llm');
    expect(after.admitted).toBe(before.admitted);
    expect(after.deadline_expired - before.deadline_expired).toBe(1);
    expect(model.ended).toEqual([]);
  });

  it.each(['abc', '-5', '0', '1.5S', '123456789', '100s', '2000, 3000'])(
    'a malformed header (%j) means no deadline: served, logged once, nothing leaked',
    async (value) => {
      const holder = await occupy('/llm');
      const queued = send('/llm?id=bad&ms=1', { [HEADER]: value });
      await until('/llm', 'queued', 1);
      model.hold.open();
      expect((await holder.done).status).toBe(201);
      expect(await queued).toMatchObject({ status: 201, aborted: false });
      const warned = logger.messages('warn').filter((m) => m.includes(`malformed ${HEADER}`));
      expect(warned).toHaveLength(1);
    },
  );

  describe('BalancerService.run() with a deadline', () => {
    const run = (fn: (signal: AbortSignal) => Promise<unknown>, deadline: number | Date) =>
      app.app.get(Consumer).balancer.run('/llm', fn, { deadline });

    it("fn's signal fires at the deadline (reason DeadlineExceededError)", async () => {
      const result = await run((signal) => model.call('run', signal), 250);
      expect(result).toEqual({ aborted: true });
      expect(model.ended[0].reason).toBeInstanceOf(DeadlineExceededError);
      // Without a deadline, run()'s signal does not fire for that reason.
      const plain = await app.app
        .get(Consumer)
        .balancer.run('/llm', (signal) => model.call('plain', signal, 300));
      expect(plain).toEqual({ aborted: false });
    });

    it('queued work leaves the queue at its deadline (an absolute Date too)', async () => {
      const holder = await occupy('/llm');
      const never = jest.fn(async () => 'ran');
      const start = performance.now();
      await expect(run(never, 200)).rejects.toBeInstanceOf(BalancerDeadlineException);
      // Node's millisecond timers may fire a fraction of a millisecond early on this clock.
      expect(performance.now() - start).toBeGreaterThanOrEqual(198);
      await expect(run(never, new Date(Date.now() + 150))).rejects.toMatchObject({
        reason: 'deadline',
      });
      expect(never).not.toHaveBeenCalled();
      expect((await stats('/llm')).queued).toBe(0);
      model.hold.open();
      expect((await holder.done).status).toBe(201);
    });

    it('work whose predicted wait exceeds its deadline is refused at once', async () => {
      await Promise.all(Array.from({ length: 12 }, (_, i) => send(`/llm?id=w${i}&ms=40`)));
      const holder = await occupy('/llm');
      const waiting = [send('/llm?id=q1&ms=1'), send('/llm?id=q2&ms=1')];
      await until('/llm', 'queued', 2);
      const refused = run(async () => 'ran', 20);
      await expect(refused).rejects.toBeInstanceOf(BalancerUnavailableException);
      await expect(refused).rejects.toMatchObject({ reason: 'deadline_unreachable' });
      model.hold.open();
      expect((await holder.done).status).toBe(201);
      await Promise.all(waiting);
    });
  });
});
