import {
  CanActivate,
  Controller,
  ExecutionContext,
  Get,
  Injectable,
  type INestApplication,
  Module,
  RequestMethod,
  SetMetadata,
  type Type,
} from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { BALANCER_ROUTE_METADATA, BalancerModule, type BalancerModuleOptions } from '../../src';
import {
  CapturingLogger,
  PLATFORMS,
  startApp,
  type PlatformName,
  type RunningApp,
} from '../harness/platforms';
import {
  appWith,
  asyncAppWith,
  basic,
  DashboardTestController,
  injectedConfig,
} from './dashboard-fixtures';

const BASE = { healthEndpoint: false as const, probeOnStartup: false };

async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  return (await fetch(url, { headers, redirect: 'manual' })).status;
}

function moduleWith(balancer: ReturnType<typeof BalancerModule.forRoot>): Type {
  @Module({ imports: [balancer], controllers: [DashboardTestController] })
  class OwnRoutesTestModule {}
  return OwnRoutesTestModule;
}

/** Compile and start; resolves with the startup error instead when there is one. */
async function startupError(platform: PlatformName, module: Type): Promise<string> {
  try {
    const running = await startApp(platform, module);
    await running.close();
  } catch (err) {
    return (err as Error).message;
  }
  return 'started';
}

describe.each(PLATFORMS)("the balancer's own routes on %s", (platform) => {
  let running: RunningApp | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('live under routePrefix, and the dashboard finds them there', async () => {
    running = await startApp(platform, appWith({ routePrefix: '/ops/lb/' }));
    const { url } = running;
    for (const route of ['stats', 'health', 'history', 'metrics']) {
      expect([route, await status(`${url}/ops/lb/${route}`)]).toEqual([route, 200]);
      expect([route, await status(`${url}/balancer/${route}`)]).toEqual([route, 404]);
    }
    const html = await (await fetch(`${url}/balancer/ui/`)).text();
    const config = injectedConfig(html);
    expect(new URL(config.statsUrl, `${url}/balancer/ui/`).pathname).toBe('/ops/lb/stats');
    expect(new URL(config.historyUrl, `${url}/balancer/ui/`).pathname).toBe('/ops/lb/history');
    // Own routes are never watched even when an endpoint key names one.
    const stats = (await (await fetch(`${url}/ops/lb/stats`)).json()) as {
      endpoints: Record<string, unknown>;
    };
    expect(Object.keys(stats.endpoints)).toEqual(['/slow']);
  });

  it('take the prefix from forRootAsync({ routePrefix }) and from the YAML route_prefix', async () => {
    @Module({
      imports: [
        BalancerModule.forRootAsync({
          routePrefix: 'internal/balancer',
          useFactory: async () => ({ ...BASE, routePrefix: 'internal/balancer' }),
        }),
      ],
      controllers: [DashboardTestController],
    })
    class AsyncPrefixModule {}
    running = await startApp(platform, AsyncPrefixModule);
    expect(await status(`${running.url}/internal/balancer/stats`)).toBe(200);
    await running.close();

    dir = mkdtempSync(join(tmpdir(), 'balancer-routes-'));
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, 'probe_on_startup: false\nhealth_endpoint: null\nroute_prefix: lb\n');
    running = await startApp(platform, moduleWith(BalancerModule.forRoot(file)));
    expect(await status(`${running.url}/lb/stats`)).toBe(200);
    expect(await status(`${running.url}/lb/health`)).toBe(200);
  });

  it('stop startup when a factory names a prefix the routes were not registered under', async () => {
    const message = await startupError(platform, asyncAppWith({ routePrefix: 'late' }));
    expect(message).toContain('routePrefix "late" comes too late');
    expect(message).toContain("forRootAsync({ routePrefix: 'late'");
    expect(await startupError(platform, appWith({ routePrefix: 'a b' }))).toContain(
      'routePrefix must be a path such as balancer or ops/balancer',
    );
  });

  it('stats: false answers 404, and needs the dashboard off too', async () => {
    running = await startApp(platform, appWith({ stats: false, ui: { enable: false } }));
    expect(await status(`${running.url}/balancer/stats`)).toBe(404);
    expect(await status(`${running.url}/balancer/health`)).toBe(200);
    expect(await startupError(platform, appWith({ stats: false }))).toContain(
      'stats: the dashboard reads the stats route; with stats: false set ui.enable: false too',
    );
  });

  describe('an app with a global auth guard', () => {
    const IS_PUBLIC = 'isPublic';
    const Public = () => SetMetadata(IS_PUBLIC, true);

    /** The usual recipe: a bearer token everywhere except on routes marked public. */
    @Injectable()
    class BearerGuard implements CanActivate {
      constructor(private readonly reflector: Reflector) {}
      canActivate(context: ExecutionContext): boolean {
        const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [
          context.getHandler(),
          context.getClass(),
        ]);
        if (isPublic) return true;
        const req = context.switchToHttp().getRequest<{ headers: Record<string, string> }>();
        return req.headers.authorization === 'Bearer app-token';
      }
    }

    /** The other recipe: the guard itself lets the balancer's routes through. */
    @Injectable()
    class BalancerAwareGuard implements CanActivate {
      constructor(private readonly reflector: Reflector) {}
      canActivate(context: ExecutionContext): boolean {
        if (this.reflector.get(BALANCER_ROUTE_METADATA, context.getClass())) return true;
        const req = context.switchToHttp().getRequest<{ headers: Record<string, string> }>();
        return req.headers.authorization === 'Bearer app-token';
      }
    }

    @Controller()
    class PublicController {
      @Get('open')
      @Public()
      open(): string {
        return 'open';
      }
    }

    const appGuarded = (guard: Type, options: Exclude<BalancerModuleOptions, string>): Type => {
      @Module({
        imports: [BalancerModule.forRoot({ ...BASE, ...options })],
        controllers: [DashboardTestController, PublicController],
        providers: [{ provide: APP_GUARD, useClass: guard }],
      })
      class GuardedModule {}
      return GuardedModule;
    };

    it('blocks the balancer routes like any other without a marker (the problem)', async () => {
      running = await startApp(platform, appGuarded(BearerGuard, {}));
      expect(await status(`${running.url}/balancer/health`)).toBe(403);
      expect(await status(`${running.url}/balancer/stats`)).toBe(403);
      expect(await status(`${running.url}/other`)).toBe(403);
      expect(await status(`${running.url}/open`)).toBe(200);
    });

    it('lets probes and scrapers through with routeMetadata, Basic auth still applies', async () => {
      running = await startApp(
        platform,
        appGuarded(BearerGuard, {
          routeMetadata: { [IS_PUBLIC]: true },
          ui: { username: 'ops', password: 'pw' },
        }),
      );
      const { url } = running;
      expect(await status(`${url}/balancer/health`)).toBe(200);
      expect(await status(`${url}/balancer/stats`)).toBe(401);
      expect(await status(`${url}/balancer/stats`, { authorization: basic('ops', 'pw') })).toBe(
        200,
      );
      expect(await status(`${url}/balancer/metrics`, { authorization: basic('ops', 'pw') })).toBe(
        200,
      );
      // The app's own routes are untouched.
      expect(await status(`${url}/other`)).toBe(403);
      expect(await status(`${url}/other`, { authorization: 'Bearer app-token' })).toBe(200);
    });

    it('lets them through with a Reflector check of BALANCER_ROUTE_METADATA', async () => {
      running = await startApp(platform, appGuarded(BalancerAwareGuard, {}));
      expect(await status(`${running.url}/balancer/health`)).toBe(200);
      expect(await status(`${running.url}/balancer/stats`)).toBe(200);
      expect(await status(`${running.url}/other`)).toBe(403);
    });
  });

  describe('startup warning for routes open to the network', () => {
    /**
     * Listen on `host` and return the warnings; `setup` runs before listen (a global prefix).
     * The check reads the bound address; the tests fetch the named routes over loopback.
     */
    async function listenOn(
      host: string,
      options: Exclude<BalancerModuleOptions, string>,
      setup?: (app: INestApplication) => void,
    ) {
      const logger = new CapturingLogger();
      const ref = await Test.createTestingModule({ imports: [appWith(options)] })
        .setLogger(logger)
        .compile();
      const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
      const app = ref.createNestApplication(adapter, { logger });
      setup?.(app);
      await app.listen(0, host);
      const { port } = app.getHttpServer().address() as AddressInfo;
      running = { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
      return logger.messages('warn').filter((m) => m.includes('without credentials'));
    }

    /** The paths a warning names, in order. */
    function named(warning: string | undefined): string[] {
      return (warning ?? '').split(' answer ')[0].split(', ');
    }

    it('warns on every interface without credentials, naming every open route', async () => {
      const warnings = await listenOn('0.0.0.0', {});
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^\/balancer\/stats, \/balancer\/history, \/balancer\/metrics, \/balancer\/ui answer without credentials on every interface \(0\.0\.0\.0:\d+\)/,
      );
    });

    it('names the paths under the global prefix, as they are served', async () => {
      const [warning] = await listenOn('0.0.0.0', { routePrefix: 'ops' }, (app) =>
        app.setGlobalPrefix('api'),
      );
      const paths = named(warning);
      expect(paths).toEqual([
        '/api/ops/stats',
        '/api/ops/history',
        '/api/ops/metrics',
        '/api/balancer/ui',
      ]);
      for (const path of paths) {
        expect([path, (await fetch(`${running!.url}${path}`)).status]).toEqual([path, 200]);
      }
    });

    it('leaves the prefix off a route setGlobalPrefix excludes', async () => {
      const [warning] = await listenOn('0.0.0.0', { ui: { enable: false } }, (app) =>
        app.setGlobalPrefix('api', {
          exclude: [{ path: 'balancer/stats', method: RequestMethod.GET }],
        }),
      );
      const paths = named(warning);
      expect(paths).toEqual(['/balancer/stats', '/api/balancer/metrics']);
      for (const path of paths) {
        expect([path, (await fetch(`${running!.url}${path}`)).status]).toEqual([path, 200]);
      }
    });

    it('names only what is served', async () => {
      const [warning] = await listenOn('0.0.0.0', { metrics: false, ui: { enable: false } });
      expect(warning).toMatch(/^\/balancer\/stats answer/);
    });

    it('stays quiet on loopback, with credentials, or with nothing open', async () => {
      expect(await listenOn('127.0.0.1', {})).toEqual([]);
      await running?.close();
      expect(await listenOn('0.0.0.0', { ui: { username: 'a', password: 'b' } })).toEqual([]);
      await running?.close();
      expect(
        await listenOn('0.0.0.0', { stats: false, metrics: false, ui: { enable: false } }),
      ).toEqual([]);
    });
  });
});
