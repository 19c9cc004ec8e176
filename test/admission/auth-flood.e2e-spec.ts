import {
  Controller,
  ForbiddenException,
  HttpCode,
  Injectable,
  Module,
  Post,
  type CanActivate,
  type ExecutionContext,
  type Type,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { IncomingMessage } from 'node:http';
import { Balanced, BalancerModule, type BalancerOptions } from '../../src';
import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';

const TOKEN = 'Bearer good';
const AUTH = { authorization: TOKEN };
const ANONYMOUS = 32;
const BODY = JSON.stringify({ data: 'x'.repeat(64 * 1024) });

/** The app's authentication: a global guard answering 403 without the right token. */
@Injectable()
class TokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{ headers: IncomingMessage['headers'] }>();
    if (req.headers.authorization !== TOKEN) throw new ForbiddenException();
    return true;
  }
}

@Controller()
class WorkController {
  @Post('work')
  @HttpCode(200)
  @Balanced({ capacity: 1, queueTimeout: 60, maxQueue: 1000 })
  async work(): Promise<string> {
    await new Promise((r) => setTimeout(r, 100));
    return 'done';
  }
}

function appModule(earlyAdmission: BalancerOptions['earlyAdmission']): Type {
  @Module({
    imports: [BalancerModule.forRoot({ healthEndpoint: false, logger: false, earlyAdmission })],
    controllers: [WorkController],
    providers: [{ provide: APP_GUARD, useClass: TokenGuard }],
  })
  class AuthFloodModule {}
  return AuthFloodModule;
}

const post = (url: string, authorization?: string): Promise<Response> =>
  fetch(`${url}/work`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization ? { authorization } : {}),
    },
    body: BODY,
  });

/**
 * 32 anonymous clients post 64 KB bodies in a loop (each re-posts on its 403) while one
 * authenticated client sends five requests in turn. Returns the authenticated client's
 * latencies, the anonymous answers' statuses and the pool's admissions during the flood.
 */
async function flood(url: string): Promise<{
  latencies: number[];
  anonymous: Set<number>;
  admitted: number;
}> {
  const before = (await poolStats(url, '/work', AUTH)).admitted;
  let stop = false;
  const anonymous = new Set<number>();
  const floods = Array.from({ length: ANONYMOUS }, async () => {
    try {
      while (!stop) {
        const res = await post(url);
        anonymous.add(res.status);
        await res.arrayBuffer();
      }
    } finally {
      stop = true;
    }
  });
  const latencies: number[] = [];
  try {
    await waitFor(() => anonymous.size > 0, 10_000, 'the flood to be answered');
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const res = await post(url, TOKEN);
      expect(await res.text()).toBe('done');
      latencies.push(performance.now() - started);
    }
  } finally {
    // Also when a step failed: the other clients stop, so the app can close.
    stop = true;
  }
  await Promise.all(floods);
  await waitFor(async () => (await poolStats(url, '/work', AUTH)).active_requests === 0);
  return {
    latencies,
    anonymous,
    admitted: (await poolStats(url, '/work', AUTH)).admitted - before,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

describe.each(PLATFORMS)('authentication beside early admission on %s', (platform) => {
  describe('earlyAdmission: a cheap credential check', () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await startApp(
        platform,
        appModule((req) => typeof req.headers.authorization === 'string'),
      );
    });
    afterAll(async () => {
      await app?.close();
    });

    it('an anonymous flood never takes a slot or a queue place: only the authenticated requests are admitted', async () => {
      const { latencies, anonymous, admitted } = await flood(app.url);
      process.stdout.write(
        `[auth] ${platform}, earlyAdmission(check): authenticated median ` +
          `${median(latencies).toFixed(0)} ms beside ${ANONYMOUS} anonymous clients\n`,
      );
      expect([...anonymous]).toEqual([403]);
      expect(admitted).toBe(5);
    });

    it('a request with a credential the app rejects is admitted once and gives the slot back with its 403', async () => {
      const before = await poolStats(app.url, '/work', AUTH);
      const res = await post(app.url, 'Bearer wrong');
      expect(res.status).toBe(403);
      await waitFor(async () => (await poolStats(app.url, '/work', AUTH)).active_requests === 0);
      const after = await poolStats(app.url, '/work', AUTH);
      expect(after.admitted - before.admitted).toBe(1);
      expect(after.available_slots).toBe(1);
    });
  });

  describe('earlyAdmission: false', () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await startApp(platform, appModule(false));
    });
    afterAll(async () => {
      await app?.close();
    });

    it("admits after the app's guards: the flood is rejected before any slot", async () => {
      const { latencies, anonymous, admitted } = await flood(app.url);
      process.stdout.write(
        `[auth] ${platform}, earlyAdmission false: authenticated median ` +
          `${median(latencies).toFixed(0)} ms beside ${ANONYMOUS} anonymous clients\n`,
      );
      expect([...anonymous]).toEqual([403]);
      expect(admitted).toBe(5);
    });
  });

  describe('earlyAdmission: true (the default)', () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await startApp(platform, appModule(true));
    });
    afterAll(async () => {
      await app?.close();
    });

    it('admits anonymous requests before the guard rejects them (what the option is for)', async () => {
      const { latencies, anonymous, admitted } = await flood(app.url);
      process.stdout.write(
        `[auth] ${platform}, earlyAdmission true: authenticated median ` +
          `${median(latencies).toFixed(0)} ms beside ${ANONYMOUS} anonymous clients\n`,
      );
      expect([...anonymous]).toEqual([403]);
      expect(admitted).toBeGreaterThan(5);
    });
  });
});
