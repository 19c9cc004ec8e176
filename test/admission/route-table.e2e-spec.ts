import {
  Body,
  Controller,
  Get,
  HttpCode,
  Module,
  Post,
  Version,
  VersioningType,
  type Type,
} from '@nestjs/common';
import { request } from 'node:http';
import { Balanced, BalancerModule } from '../../src';
import { CapturingLogger, PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { Latch, waitFor } from '../harness/wait-for';

/**
 * Route shapes that share something with another route (a path, a handler, a class) or whose
 * handler was replaced by a decorator above `@Balanced()`: each request is admitted into its
 * own route's pool exactly once, or not at all when its route is not watched.
 */
class Work {
  running = 0;
  peak = 0;
  private latch = new Latch();
  async run<T>(value: T): Promise<T> {
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    try {
      await this.latch.promise;
      return value;
    } finally {
      this.running--;
    }
  }
  reset(): void {
    this.running = 0;
    this.peak = 0;
    this.latch = new Latch();
  }
  open(): void {
    this.latch.open();
  }
}
const work = new Map<string, Work>();
const w = (key: string): Work => {
  let found = work.get(key);
  if (!found) work.set(key, (found = new Work()));
  return found;
};

/** A decorator written above `@Balanced()` that renames the method, keeping its metadata. */
function Traced(): MethodDecorator {
  return (_target, _key, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const traced = function traced(this: unknown, ...args: unknown[]): unknown {
      return original.apply(this, args);
    };
    for (const k of Reflect.getOwnMetadataKeys(original)) {
      Reflect.defineMetadata(k, Reflect.getOwnMetadata(k, original), traced);
    }
    descriptor.value = traced;
    return descriptor;
  };
}

/** A decorator written above `@Balanced()` that replaces the method and drops its metadata. */
function Careless(): MethodDecorator {
  return (_target, _key, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    descriptor.value = function careless(this: unknown, ...args: unknown[]): unknown {
      return original.apply(this, args);
    };
    return descriptor;
  };
}

@Controller('base')
@Balanced({ capacity: 1 })
class BaseController {
  @Get('inherited')
  inherited(): Promise<string> {
    return w('inherited').run('inherited');
  }
}

@Controller('child')
class ChildController extends BaseController {
  @Get('own')
  own(): Promise<string> {
    return w('own').run('own');
  }
}

@Controller()
class MultiController {
  /** `endpoints` names `/a` only: `/b` is not watched. */
  @Post(['a', 'b'])
  @HttpCode(200)
  multi(@Body() body: { n: number }): Promise<number> {
    return w('multi').run(body.n);
  }

  /** A legacy wildcard, which Nest rewrites for Express 5 (its router refuses `*` as written). */
  @Post('files/*')
  @HttpCode(200)
  @Balanced({ capacity: 1 })
  files(): Promise<string> {
    return w('files').run('files');
  }

  @Post('traced')
  @HttpCode(200)
  @Traced()
  @Balanced({ capacity: 1 })
  traced(): Promise<string> {
    return w('traced').run('traced');
  }

  @Post('careless')
  @HttpCode(200)
  @Careless()
  @Balanced({ capacity: 1 })
  careless(): Promise<string> {
    return w('careless').run('careless');
  }
}

@Controller({ host: 'gpu.test', path: 'hosted' })
class GpuHostController {
  @Post()
  @HttpCode(200)
  @Balanced({ capacity: 1, pool: 'gpu-host' })
  score(): Promise<string> {
    return w('gpu-host').run('gpu');
  }
}

@Controller({ host: 'cpu.test', path: 'hosted' })
class CpuHostController {
  @Post()
  @HttpCode(200)
  score(): Promise<string> {
    return w('cpu-host').run('cpu');
  }
}

/** Host routing is Express's (Nest documents sub-domain routing as Express-only). */
function shapesModule(platform: 'express' | 'fastify'): Type {
  const hosts = platform === 'express' ? [CpuHostController] : [];
  @Module({
    imports: [
      BalancerModule.forRoot({
        logger: false,
        endpoints: { '/a': { capacity: 1 } },
      }),
    ],
    controllers: [ChildController, MultiController, GpuHostController, ...hosts],
  })
  class ShapesModule {}
  return ShapesModule;
}

@Controller('items')
class ItemsController {
  @Post()
  @Version('1')
  @HttpCode(200)
  @Balanced({ capacity: 1, pool: 'items-v1' })
  one(): Promise<string> {
    return w('items-v1').run('v1');
  }

  @Post()
  @Version('2')
  @HttpCode(200)
  two(): Promise<string> {
    return w('items-v2').run('v2');
  }
}

/** Two watched versions on one path, both renamed alike: the table cannot tell them apart. */
@Controller('ambiguous')
class AmbiguousController {
  @Post()
  @Version('1')
  @HttpCode(200)
  @Traced()
  @Balanced({ capacity: 1, pool: 'amb-1' })
  one(): string {
    return 'one';
  }

  @Post()
  @Version('2')
  @HttpCode(200)
  @Traced()
  @Balanced({ capacity: 1, pool: 'amb-2' })
  two(): string {
    return 'two';
  }
}

function versionedModule(): Type {
  @Module({
    imports: [BalancerModule.forRoot({ logger: true })],
    controllers: [ItemsController, AmbiguousController],
  })
  class VersionedModule {}
  return VersionedModule;
}

interface Answer {
  status: number;
  body: string;
}

/** One request with any headers (`Host` included), the body as JSON. */
function call(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  const { hostname, port } = new URL(url);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        method,
        path,
        headers: {
          ...headers,
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...(payload ? { 'content-length': String(Buffer.byteLength(payload)) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

type Stats = Record<string, { admitted: number; active_requests: number; queued: number }>;

async function stats(url: string): Promise<Stats> {
  const res = await fetch(`${url}/balancer/stats`);
  return ((await res.json()) as { endpoints: Stats }).endpoints;
}

/** Admissions per pool since `before`. */
function admittedSince(before: Stats, after: Stats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(after)) {
    const n = s.admitted - (before[name]?.admitted ?? 0);
    if (n !== 0) out[name] = n;
  }
  return out;
}

/**
 * Three requests at once on a watched route: one runs, two wait in `pool`; released, all are
 * served, the handler never ran two at once and `pool` alone admitted exactly three.
 */
async function expectCapped(
  url: string,
  send: () => Promise<Answer>,
  key: string,
  pool: string,
): Promise<void> {
  w(key).reset();
  const before = await stats(url);
  const answers = [send(), send(), send()];
  await waitFor(
    async () => {
      const s = (await stats(url))[pool];
      return s?.active_requests === 1 && s.queued === 2;
    },
    10_000,
    `1 running and 2 queued in ${pool}`,
  );
  w(key).open();
  expect((await Promise.all(answers)).map((a) => a.status)).toEqual([200, 200, 200]);
  expect(w(key).peak).toBe(1);
  await waitFor(async () => (await stats(url))[pool].active_requests === 0);
  expect(admittedSince(before, await stats(url))).toEqual({ [pool]: 3 });
}

/** Three requests at once on a route that is not watched: all run together, no pool counts. */
async function expectUnwatched(
  url: string,
  send: () => Promise<Answer>,
  key: string,
): Promise<void> {
  w(key).reset();
  const before = await stats(url);
  const answers = [send(), send(), send()];
  await waitFor(() => w(key).running === 3, 10_000, `three ${key} running at once`);
  w(key).open();
  expect((await Promise.all(answers)).map((a) => a.status)).toEqual([200, 200, 200]);
  expect(admittedSince(before, await stats(url))).toEqual({});
}

describe.each(PLATFORMS)('route table: shapes on %s', (platform) => {
  let app: RunningApp;

  beforeAll(async () => {
    app = await startApp(platform, shapesModule(platform));
  });
  afterAll(async () => {
    for (const x of work.values()) x.open();
    await app?.close();
  });

  it('a subclass of a class-level @Balanced() controller: its own and inherited routes are capped, health is ready', async () => {
    await expectCapped(app.url, () => call(app.url, 'GET', '/child/own'), 'own', '/child/own');
    await expectCapped(
      app.url,
      () => call(app.url, 'GET', '/child/inherited'),
      'inherited',
      '/child/inherited',
    );
    const health = await fetch(`${app.url}/balancer/health`);
    const body = (await health.json()) as { details: { balancer: { unprotected: string[] } } };
    expect(body.details.balancer.unprotected).toEqual([]);
    expect(health.status).toBe(200);
  });

  it('endpoints naming one path of a multi-path handler: that path is capped, the other is not watched', async () => {
    const post = (path: string) => () => call(app.url, 'POST', path, {}, { n: 1 });
    await expectCapped(app.url, post('/a'), 'multi', '/a');
    await expectUnwatched(app.url, post('/b'), 'multi');
  });

  it('a renaming decorator above @Balanced(), with or without the metadata: capped, counted once', async () => {
    await expectCapped(app.url, () => call(app.url, 'POST', '/traced'), 'traced', '/traced');
    await expectCapped(app.url, () => call(app.url, 'POST', '/careless'), 'careless', '/careless');
    const health = (await (await fetch(`${app.url}/balancer/health`)).json()) as {
      details: { balancer: { unadmitted: Record<string, number> } };
    };
    expect(health.details.balancer.unadmitted).toEqual({});
  });

  it('a wildcard route is capped in its own pool', async () => {
    await expectCapped(app.url, () => call(app.url, 'POST', '/files/a/b'), 'files', '/files/*');
  });

  it('host-routed controllers on one path: the watched host is capped, the other host (Express) is not', async () => {
    const to = (host: string) => () => call(app.url, 'POST', '/hosted', { host }, { n: 1 });
    await expectCapped(app.url, to('gpu.test'), 'gpu-host', 'gpu-host');
    if (platform === 'express') await expectUnwatched(app.url, to('cpu.test'), 'cpu-host');
  });
});

describe.each(PLATFORMS)('route table: versions on one path on %s', (platform) => {
  for (const type of ['header', 'media type'] as const) {
    describe(`${type} versions`, () => {
      let app: RunningApp;
      const logger = new CapturingLogger();
      const version = (v: string): Record<string, string> =>
        type === 'header' ? { 'x-api-version': v } : { accept: `application/json;v=${v}` };

      beforeAll(async () => {
        app = await startApp(platform, versionedModule(), {
          logger,
          setup: (a) =>
            a.enableVersioning(
              type === 'header'
                ? { type: VersioningType.HEADER, header: 'x-api-version' }
                : { type: VersioningType.MEDIA_TYPE, key: 'v=' },
            ),
        });
      });
      afterAll(async () => {
        for (const x of work.values()) x.open();
        await app?.close();
      });

      it('the watched version is capped; the unwatched one neither waits behind it nor counts', async () => {
        const post = (v: string) => () => call(app.url, 'POST', '/items', version(v), { n: 1 });
        await expectCapped(app.url, post('1'), 'items-v1', 'items-v1');
        // v1 holds its only slot while v2 requests run beside it.
        w('items-v1').reset();
        const holding = post('1')();
        await waitFor(() => w('items-v1').running === 1);
        await expectUnwatched(app.url, post('2'), 'items-v2');
        w('items-v1').open();
        expect((await holding).status).toBe(200);
      });

      it('a request the table cannot place is answered 503 unresolved_route, logged and counted in health', async () => {
        const before = await stats(app.url);
        const answer = await call(app.url, 'POST', '/ambiguous', version('2'), { n: 1 });
        expect(answer.status).toBe(503);
        expect(JSON.parse(answer.body)).toMatchObject({ reason: 'unresolved_route' });
        expect(admittedSince(before, await stats(app.url))).toEqual({});
        const health = (await (await fetch(`${app.url}/balancer/health`)).json()) as {
          details: { balancer: { unresolved: Record<string, number> } };
        };
        expect(health.details.balancer.unresolved['AmbiguousController.traced']).toBeGreaterThan(0);
        expect(logger.messages('error')).toEqual(
          expect.arrayContaining([expect.stringContaining('answered 503 unresolved_route')]),
        );
      });
    });
  }
});
