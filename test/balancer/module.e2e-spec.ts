import {
  CallHandler,
  Controller,
  ExecutionContext,
  Get,
  Injectable,
  Module,
  NestInterceptor,
  Param,
  Post,
  UseInterceptors,
} from '@nestjs/common';
import { GUARDS_METADATA, INTERCEPTORS_METADATA } from '@nestjs/common/constants';
import { map, type Observable } from 'rxjs';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAdmissionWrapper } from '../../src/admission/handler-wrapper';
import {
  AdmissionGuard,
  AdmissionInterceptor,
  Balanced,
  BalancerConfigError,
  BalancerModule,
  ProbeRunner,
} from '../../src';
import { CapturingLogger, PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

let hold = new Latch();

@Controller('v1/items')
class ItemsController {
  @Get(':id')
  @Balanced({ capacity: 2, probe: { path: '/api/v1/items/1' } })
  get(@Param('id') id: string): { id: string } {
    return { id };
  }
}

/** Not decorated: watched only because options.endpoints names its path. */
@Controller()
class YamlOnlyController {
  @Post('score')
  async score(): Promise<string> {
    await hold.promise;
    return 'scored';
  }
}

@Controller('gpu')
@Balanced({ pool: 'gpu', capacity: 1 })
class SharedPoolController {
  @Get('a') async a(): Promise<string> {
    await hold.promise;
    return 'a';
  }
  @Get('b') async b(): Promise<string> {
    await hold.promise;
    return 'b';
  }
}

/** A user's own interceptor: must keep working on a watched route. */
class WrapInterceptor implements NestInterceptor {
  intercept(_ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((body) => ({ wrapped: body })));
  }
}

@Controller()
class PrecedenceController {
  @Get('precedence')
  @Balanced({ capacity: 5, maxQueue: 7 })
  @UseInterceptors(new WrapInterceptor())
  p(): string {
    return 'p';
  }

  @Get('unwatched')
  unwatched(): string {
    return 'free';
  }
}

const yamlDir = mkdtempSync(join(tmpdir(), 'balancer-module-'));
const yamlPath = join(yamlDir, 'balancer.yml');
writeFileSync(
  yamlPath,
  [
    '# YAML-only setup: no decorators needed',
    'health_endpoint: false',
    'probe_on_startup: false',
    'endpoints:',
    '  /api/score:',
    '    method: POST',
    '    capacity: 1',
    '  /api/precedence:',
    '    capacity: 3',
    '  /api/nowhere:',
    '    capacity: 1',
  ].join('\n'),
);

@Module({
  imports: [BalancerModule.forRoot(yamlPath)],
  controllers: [ItemsController, YamlOnlyController, SharedPoolController, PrecedenceController],
})
class YamlAppModule {}

describe.each(PLATFORMS)('BalancerModule on %s', (platform) => {
  let app: RunningApp;
  const logger = new CapturingLogger();
  let api: string;

  beforeAll(async () => {
    app = await startApp(platform, YamlAppModule, {
      setup: (a) => a.setGlobalPrefix('api'),
      logger,
    });
    api = `${app.url}/api`;
  });
  afterAll(async () => {
    hold.open();
    await app.close();
  });
  afterEach(() => {
    hold.open();
    hold = new Latch();
  });

  it('keys pools by the served path: global prefix, controller path and parameters', async () => {
    const res = await fetch(`${app.url}/api/v1/items/42`);
    expect(await res.json()).toEqual({ id: '42' });
    const s = await poolStats(api, '/api/v1/items/:id');
    expect(s).toMatchObject({ capacity: 2, capacity_source: 'manual', admitted: 1 });
  });

  it('watches a route named only in the YAML file', async () => {
    const first = fetch(`${app.url}/api/score`, { method: 'POST' });
    await waitFor(async () => (await poolStats(api, '/api/score')).active_requests === 1);
    const second = fetch(`${app.url}/api/score`, { method: 'POST' });
    await waitFor(async () => (await poolStats(api, '/api/score')).queued === 1);
    hold.open();
    expect((await first).status).toBe(201);
    expect((await second).status).toBe(201);
  });

  it('lets routes naming the same pool share one cap and one queue', async () => {
    const a = fetch(`${app.url}/api/gpu/a`);
    await waitFor(async () => (await poolStats(api, 'gpu')).active_requests === 1);
    const b = fetch(`${app.url}/api/gpu/b`);
    await waitFor(async () => (await poolStats(api, 'gpu')).queued === 1);
    hold.open();
    expect(await (await a).text()).toBe('a');
    expect(await (await b).text()).toBe('b');
    const stats = (await (await fetch(`${app.url}/api/balancer/stats`)).json()) as {
      endpoints: Record<string, { routes: string[] }>;
    };
    expect(stats.endpoints.gpu.routes.sort()).toEqual(['GET /api/gpu/a', 'GET /api/gpu/b']);
  });

  it('gives options.endpoints precedence over @Balanced(), and @Balanced() over globals', async () => {
    const stats = (await (await fetch(`${app.url}/api/balancer/stats`)).json()) as {
      endpoints: Record<
        string,
        { capacity: number; max_queue: number; queue_timeout: number; workers: number }
      >;
    };
    expect(stats.endpoints['/api/precedence']).toMatchObject({
      capacity: 3,
      max_queue: 7,
      queue_timeout: 30,
      workers: 1,
    });
  });

  it("carries admission on @Balanced() routes from the decorator itself, beside the app's own", async () => {
    const proto = PrecedenceController.prototype;
    const on = (key: string, fn: object) => (Reflect.getMetadata(key, fn) ?? []) as unknown[];
    expect(isAdmissionWrapper(proto.p)).toBe(true);
    expect(proto.p.name).toBe('p');
    const guards = on(GUARDS_METADATA, proto.p);
    // The class, not an instance: Nest resolves it in the controller's module.
    expect(guards.filter((g) => g === AdmissionGuard)).toHaveLength(1);
    expect(on(INTERCEPTORS_METADATA, proto.p).some((i) => i === AdmissionInterceptor)).toBe(false);
    // The app's own interceptor on the handler is still there (copied onto the wrapper).
    expect(on(INTERCEPTORS_METADATA, proto.p).length).toBeGreaterThanOrEqual(1);
    expect(isAdmissionWrapper(proto.unwatched)).toBe(false);
    expect(on(GUARDS_METADATA, proto.unwatched).some((g) => g === AdmissionGuard)).toBe(false);
    expect(await (await fetch(`${api}/precedence`)).json()).toEqual({ wrapped: 'p' });
    expect(await (await fetch(`${api}/unwatched`)).text()).toBe('free');
    expect((await poolStats(api, '/api/precedence')).admitted).toBeGreaterThanOrEqual(1);
  });

  it('warns about an endpoints key that matches no route', () => {
    expect(logger.messages('warn')).toEqual(
      expect.arrayContaining([
        expect.stringContaining('endpoints["/api/nowhere"] matches no route'),
      ]),
    );
  });
});

describe('BalancerModule options sources', () => {
  it('forRootAsync takes options from ConfigService', async () => {
    @Controller()
    class C {
      @Get('x') @Balanced() x(): string {
        return 'x';
      }
    }
    @Module({
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          load: [
            () => ({
              balancer: { healthEndpoint: false, probeOnStartup: false, defaultCapacity: 6 },
            }),
          ],
        }),
        BalancerModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => config.getOrThrow('balancer'),
        }),
      ],
      controllers: [C],
    })
    class AsyncModule {}
    const app = await startApp('express', AsyncModule);
    try {
      expect(await poolStats(app.url, '/x')).toMatchObject({
        capacity: 6,
        capacity_source: 'default',
      });
    } finally {
      await app.close();
    }
  });

  it("exports ProbeRunner to the app's own providers (await whenIdle() before taking load)", async () => {
    @Controller()
    class C {
      @Get('p') @Balanced() p(): string {
        return 'p';
      }
    }
    @Injectable()
    class Warmup {
      constructor(readonly runner: ProbeRunner) {}
    }
    /** A feature module of the app: it sees only what BalancerModule exports. */
    @Module({ providers: [Warmup], exports: [Warmup] })
    class FeatureModule {}
    @Module({
      imports: [
        BalancerModule.forRoot({
          healthEndpoint: false,
          probeOnStartup: false,
          defaultCapacity: 3,
        }),
        FeatureModule,
      ],
      controllers: [C],
    })
    class AppModule {}
    const app = await startApp('express', AppModule);
    try {
      const warmup = app.app.get(Warmup);
      expect(warmup.runner).toBeInstanceOf(ProbeRunner);
      await warmup.runner.whenIdle();
      expect(await poolStats(app.url, '/p')).toMatchObject({ capacity: 3 });
    } finally {
      await app.close();
    }
  });

  it('stops startup with one error naming every bad option', async () => {
    @Module({ imports: [BalancerModule.forRoot({ queueTimeout: -5, maxQueue: 1.5 } as never)] })
    class BadModule {}
    const err = await Test.createTestingModule({ imports: [BadModule] })
      .compile()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(BalancerConfigError);
    expect((err as BalancerConfigError).problems).toEqual([
      'queueTimeout must not be less than 0',
      'maxQueue must be an integer number',
    ]);
  });
});
