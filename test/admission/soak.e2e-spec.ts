import { Controller, Get, HttpException, Module, Query, type Type } from '@nestjs/common';
import { Balanced, BalancerModule } from '../../src';
import {
  ADMISSION_CASES,
  startApp,
  type AdmissionMode,
  type RunningApp,
} from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';

/** Small seeded PRNG (mulberry32) so a failing soak can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let inFlight = 0;
let peak = 0;

@Controller()
class SoakController {
  @Get('soak')
  @Balanced({ capacity: 4, queueTimeout: 0.04, maxQueue: 40 })
  async soak(@Query('ms') ms: string, @Query('fail') fail: string): Promise<string> {
    inFlight++;
    peak = Math.max(peak, inFlight);
    try {
      await new Promise((r) => setTimeout(r, Number(ms)));
      if (fail === '1') throw new HttpException('injected failure', 500);
      return 'ok';
    } finally {
      inFlight--;
    }
  }

  /** Timeout racing release: the handler takes about as long as the queue timeout. */
  @Get('race')
  @Balanced({ capacity: 1, queueTimeout: 0.01 })
  async race(): Promise<string> {
    await new Promise((r) => setTimeout(r, 10));
    return 'ok';
  }
}

function soakApp(admission: AdmissionMode): Type {
  @Module({
    imports: [BalancerModule.forRoot({ healthEndpoint: false, logger: false, admission })],
    controllers: [SoakController],
  })
  class SoakModule {}
  return SoakModule;
}

const SEED = Number(process.env.SOAK_SEED ?? 20261125);
const TOTAL = 2000;
const CONCURRENCY = 40;

describe.each(ADMISSION_CASES)('randomized soak on %s with the %s', (platform, admission) => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp(platform, soakApp(admission));
  });
  afterAll(async () => app.close());

  it(`survives ${TOTAL} requests with random aborts, errors and timeouts (seed ${SEED})`, async () => {
    const rand = prng(SEED);
    const statuses = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        next++;
        const ms = Math.floor(rand() * 12);
        const fail = rand() < 0.1 ? 1 : 0;
        const abortAfter = rand() < 0.15 ? Math.floor(rand() * 20) : -1;
        const ac = new AbortController();
        const timer = abortAfter >= 0 ? setTimeout(() => ac.abort(), abortAfter) : undefined;
        let key: string;
        try {
          const res = await fetch(`${app.url}/soak?ms=${ms}&fail=${fail}`, { signal: ac.signal });
          await res.arrayBuffer();
          key = String(res.status);
        } catch (err) {
          // Only our own abort counts as an abort: a reset or refused connection (a crashed
          // server, a socket the balancer destroyed) is an outcome of its own, and fails below.
          const ours = ac.signal.aborted && (err as Error).name === 'AbortError';
          const cause = (err as Error & { cause?: { code?: string } }).cause;
          key = ours ? 'aborted' : `error ${cause?.code ?? (err as Error).message}`;
        } finally {
          clearTimeout(timer);
        }
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // Every kind of outcome happened, and nothing else did.
    for (const k of ['200', '500', '504', 'aborted'])
      expect(statuses.get(k) ?? 0).toBeGreaterThan(0);
    for (const k of statuses.keys()) expect(['200', '500', '503', '504', 'aborted']).toContain(k);
    await waitFor(
      async () => {
        const s = await poolStats(app.url, '/soak');
        return s.active_requests === 0 && s.queued === 0;
      },
      10_000,
      'the soak pool to settle at active 0, queued 0',
    );
    expect(peak).toBeLessThanOrEqual(4);
    // Capacity is intact: four requests run side by side again.
    peak = 0;
    const after = await Promise.all(
      Array.from({ length: 4 }, () => fetch(`${app.url}/soak?ms=50&fail=0`)),
    );
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(peak).toBe(4);
  });

  it('never leaks a slot when queue timeouts race releases', async () => {
    const results = await Promise.all(
      Array.from({ length: 300 }, () => fetch(`${app.url}/race`).then((r) => r.status)),
    );
    expect(results.every((s) => s === 200 || s === 504)).toBe(true);
    expect(results.filter((s) => s === 504).length).toBeGreaterThan(0);
    await waitFor(async () => {
      const s = await poolStats(app.url, '/race');
      return s.active_requests === 0 && s.queued === 0;
    });
    expect((await fetch(`${app.url}/race`)).status).toBe(200);
  });
});
