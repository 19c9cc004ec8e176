import { Controller, Get, Module, Post, VersioningType, type Type } from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants';
import { Balanced, BalancerConfigError, BalancerModule, type BalancedOptions } from '../../src';
import {
  CapturingLogger,
  PLATFORMS,
  startApp,
  type RunningApp,
  type StartOptions,
} from '../harness/platforms';

function moduleWith(controller: Type): Type {
  @Module({
    imports: [BalancerModule.forRoot({ healthEndpoint: false, logger: true })],
    controllers: [controller],
  })
  class M {}
  return M;
}

async function startupError(
  platform: 'express' | 'fastify',
  controller: Type,
  opts: StartOptions = {},
): Promise<Error> {
  let app: RunningApp | undefined;
  try {
    app = await startApp(platform, moduleWith(controller), opts);
  } catch (error) {
    return error as Error;
  } finally {
    await app?.close();
  }
  throw new Error('startup succeeded');
}

describe.each(PLATFORMS)('@Balanced() options are validated on %s', (platform) => {
  it('stops startup on an unknown key, naming the method, the full route path and the key', async () => {
    @Controller('typo')
    class TypoController {
      @Post('x')
      @Balanced({ capacty: 2 } as BalancedOptions)
      x(): string {
        return 'x';
      }
    }
    const error = await startupError(platform, TypoController);
    expect(error).toBeInstanceOf(BalancerConfigError);
    expect(error.message).toContain(
      '@Balanced() on TypoController.x (POST /typo/x): capacty: unknown option',
    );
  });

  it('stops startup on a bad value, naming every offending key', async () => {
    @Controller()
    class BadController {
      @Get('y')
      @Balanced({ capacity: 2.5, probe: { path: 'no-slash' } })
      y(): string {
        return 'y';
      }
    }
    const error = await startupError(platform, BadController);
    expect(error).toBeInstanceOf(BalancerConfigError);
    expect(error.message).toContain(
      '@Balanced() on BadController.y (GET /y): capacity must be a positive integer',
    );
    expect(error.message).toContain(
      '@Balanced() on BadController.y (GET /y): probe.path must start with /',
    );
  });

  it('validates a class-level @Balanced() too', async () => {
    @Controller('cls')
    @Balanced({ maxQueue: -1 })
    class ClassLevelController {
      @Get()
      z(): string {
        return 'z';
      }
    }
    const error = await startupError(platform, ClassLevelController);
    expect(error.message).toContain('@Balanced() on ClassLevelController (GET /cls): maxQueue');
  });

  it('names the path as served: global prefix, URI version and every path of the handler', async () => {
    @Controller({ path: 'items', version: '2' })
    class ServedController {
      @Post(['score', 'rank'])
      @Balanced({ capacty: 2 } as BalancedOptions)
      score(): string {
        return 'score';
      }
    }
    const error = await startupError(platform, ServedController, {
      setup: (app) => {
        app.setGlobalPrefix('api');
        app.enableVersioning({ type: VersioningType.URI });
      },
    });
    expect(error.message).toContain(
      '@Balanced() on ServedController.score (POST /api/v2/items/score, /api/v2/items/rank): ' +
        'capacty: unknown option',
    );
  });

  it('names the routes of a class-level @Balanced(), the first three and how many more', async () => {
    @Controller('many')
    @Balanced({ capacity: 0 })
    class ManyRoutesController {
      @Get('a') a(): string {
        return 'a';
      }
      @Get('b') b(): string {
        return 'b';
      }
      @Post('c') c(): string {
        return 'c';
      }
      @Get('d') d(): string {
        return 'd';
      }
    }
    const error = await startupError(platform, ManyRoutesController);
    expect(error.message).toContain(
      '@Balanced() on ManyRoutesController (GET /many/a; GET /many/b; POST /many/c; 1 more): ' +
        'capacity must be a positive integer',
    );
  });
});

describe.each(PLATFORMS)('a watched route whose guard was stripped, on %s', (platform) => {
  let app: RunningApp;
  const logger = new CapturingLogger();
  let running = 0;
  let peak = 0;

  @Controller()
  class StrippedController {
    @Get('stripped')
    @Balanced({ capacity: 1 })
    async stripped(): Promise<string> {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 100));
      running--;
      return 'ran';
    }
  }
  // What a library that rewrites route metadata could do: the admission guard is gone.
  Reflect.defineMetadata(GUARDS_METADATA, [], StrippedController.prototype.stripped);

  beforeAll(async () => {
    app = await startApp(platform, moduleWith(StrippedController), { logger });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('is admitted by the global interceptor: capped, counted once, health ready', async () => {
    const results = await Promise.all([0, 1, 2].map(() => fetch(`${app.url}/stripped`)));
    expect(await Promise.all(results.map((r) => r.text()))).toEqual(['ran', 'ran', 'ran']);
    expect(peak).toBe(1);
    const stats = (await (await fetch(`${app.url}/balancer/stats`)).json()) as {
      endpoints: Record<string, { admitted: number }>;
    };
    expect(stats.endpoints['/stripped'].admitted).toBe(3);
    const res = await fetch(`${app.url}/balancer/health`);
    const body = (await res.json()) as {
      details: { balancer: { unprotected: string[]; unadmitted: Record<string, number> } };
    };
    expect(res.status).toBe(200);
    expect(body.details.balancer.unprotected).toEqual([]);
    expect(body.details.balancer.unadmitted).toEqual({});
    expect(logger.messages('error').filter((m) => m.includes('admission'))).toEqual([]);
  });
});

describe('the route table is checked against what Fastify registered', () => {
  @Controller()
  class MovedController {
    @Post('moved')
    @Balanced({ capacity: 1 })
    moved(): string {
      return 'moved';
    }
  }

  it('names a watched route the server registered at another path (unprotected in health)', async () => {
    const logger = new CapturingLogger();
    // A plugin that rewrites route URLs as they are registered: the table's path is then wrong.
    const app = await startApp('fastify', moduleWith(MovedController), {
      logger,
      setup: (a) =>
        (
          a.getHttpAdapter().getInstance() as {
            addHook(name: 'onRoute', hook: (route: { url: string }) => void): void;
          }
        ).addHook('onRoute', (route) => {
          if (route.url === '/moved') route.url = '/elsewhere/moved';
        }),
    });
    try {
      expect(logger.messages('error')).toEqual(
        expect.arrayContaining([
          expect.stringContaining(
            'requests are NOT capped: POST /moved: the server registered no route at this path',
          ),
        ]),
      );
      const health = await fetch(`${app.url}/balancer/health`);
      const body = (await health.json()) as { details: { balancer: { unprotected: string[] } } };
      expect(health.status).toBe(503);
      expect(body.details.balancer.unprotected).toEqual([
        'POST /moved: the server registered no route at this path (the route table computed it)',
      ]);
    } finally {
      await app.close();
    }
  });
});
