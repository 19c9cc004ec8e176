import {
  Body,
  Controller,
  HttpCode,
  Module,
  Post,
  Version,
  VersioningType,
  type Type,
} from '@nestjs/common';
import { Balanced, BalancerModule } from '../../src';
import { CapturingLogger, PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

const versions = {
  v1: { hold: new Latch(), running: 0 },
  v2: { hold: new Latch(), running: 0 },
};

async function work(version: keyof typeof versions, n: number): Promise<{ v: string; n: number }> {
  const v = versions[version];
  v.running++;
  try {
    await v.hold.promise;
    return { v: version, n };
  } finally {
    v.running--;
  }
}

@Controller('versioned')
class VersionedController {
  @Post()
  @Version('1')
  @HttpCode(200)
  @Balanced({ capacity: 1, pool: 'v1', queueTimeout: 30 })
  one(@Body() body: { n: number }): Promise<{ v: string; n: number }> {
    return work('v1', body.n);
  }

  @Post()
  @Version('2')
  @HttpCode(200)
  @Balanced({ capacity: 1, pool: 'v2', queueTimeout: 30 })
  two(@Body() body: { n: number }): Promise<{ v: string; n: number }> {
    return work('v2', body.n);
  }
}

@Module({
  imports: [
    BalancerModule.forRoot({
      healthEndpoint: false,
      ui: { enable: false },
      // Express runs with `{ bodyParser: false }`: the setup where other routes get early admission.
      bodyParser: { limit: '1mb' },
    }),
  ],
  controllers: [VersionedController],
})
class SharedPathModule {}

/**
 * Two POST routes of different pools on one path, told apart by a header version: before
 * routing nothing says which pool a request is for, so neither is admitted before its body is
 * read; the guard admits each request, after parsing, into its own version's pool.
 */
describe.each(PLATFORMS)('routes of different pools sharing a path on %s', (platform) => {
  let app: RunningApp;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    versions.v1 = { hold: new Latch(), running: 0 };
    versions.v2 = { hold: new Latch(), running: 0 };
    app = await startApp(platform, SharedPathModule as Type, {
      logger,
      bodyParser: platform !== 'express',
      setup: (a) => a.enableVersioning({ type: VersioningType.HEADER, header: 'x-api-version' }),
    });
  });
  afterAll(async () => {
    versions.v1.hold.open();
    versions.v2.hold.open();
    await app?.close();
  });

  const post = (version: '1' | '2', n: number): Promise<Response> =>
    fetch(`${app.url}/versioned`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-version': version },
      body: JSON.stringify({ n }),
    });

  it('says at startup that both routes are admitted after body parsing, and why', () => {
    const lines = logger.messages().filter((m) => m.startsWith('POST /versioned:'));
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).toContain('admitted after body parsing');
      expect(line).toContain('other routes share this method and path');
    }
  });

  it("counts each version's requests in its own pool", async () => {
    const firstV1 = post('1', 1);
    await waitFor(() => versions.v1.running === 1, 10_000, 'v1 to hold its slot');
    // v1's only slot is taken; v2 has a slot of its own and runs at once.
    const firstV2 = post('2', 2);
    await waitFor(() => versions.v2.running === 1, 10_000, 'v2 to run beside v1');
    const secondV1 = post('1', 3);
    await waitFor(async () => (await poolStats(app.url, 'v1')).queued === 1);
    const v1 = await poolStats(app.url, 'v1');
    const v2 = await poolStats(app.url, 'v2');
    expect([v1.active_requests, v1.queued, v1.admitted]).toEqual([1, 1, 1]);
    expect([v2.active_requests, v2.queued, v2.admitted]).toEqual([1, 0, 1]);

    versions.v2.hold.open();
    expect(await (await firstV2).json()).toEqual({ v: 'v2', n: 2 });
    versions.v1.hold.open();
    expect(await (await firstV1).json()).toEqual({ v: 'v1', n: 1 });
    expect(await (await secondV1).json()).toEqual({ v: 'v1', n: 3 });
    await waitFor(async () => (await poolStats(app.url, 'v1')).active_requests === 0);
    expect((await poolStats(app.url, 'v1')).admitted).toBe(2);
    expect((await poolStats(app.url, 'v2')).admitted).toBe(1);
  });
});
