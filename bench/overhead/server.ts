/**
 * A trivial route served plain or behind @Balanced() (cap never reached), for the admission
 * overhead benchmark. Usage:
 *   server.ts <variant> <express|fastify> [redisUrl]
 * `memory`/`redis` use the default guard admission; `-interceptor` sets `admission: 'interceptor'`.
 * Diagnostics (not in the default run): `guard-req` (no-op guard plus a `@Req()` parameter, what
 * the wrapper's hidden argument costs), `module-only` (BalancerModule imported, route unwatched)
 * and `endpoints-unwatched` (another route watched through `endpoints`, so the global
 * `AdmissionInterceptor` is registered; the measured route is unwatched: its cost there).
 * Prints `LISTENING <port>` once ready.
 */
import 'reflect-metadata';
import {
  Controller,
  Get,
  Req,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type DynamicModule,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { Balanced, BalancerModule } from '../../src';

const [variant = 'plain', platform = 'express', redisUrl] = process.argv.slice(2);

@Controller()
class PlainController {
  @Get('hello')
  hello(): { ok: boolean } {
    return { ok: true };
  }
}

/** Does nothing: measures what Nest's interceptor machinery alone costs a route. */
class NoopInterceptor implements NestInterceptor {
  intercept(_ctx: ExecutionContext, next: CallHandler) {
    return next.handle();
  }
}

@Controller()
class NoopController {
  @Get('hello')
  @UseInterceptors(new NoopInterceptor())
  hello(): { ok: boolean } {
    return { ok: true };
  }
}

/** Lets everything through: what a guard (the other per-route hook) costs, for comparison. */
class NoopGuard implements CanActivate {
  canActivate(): boolean {
    return true;
  }
}

@Controller()
class GuardController {
  @Get('hello')
  @UseGuards(new NoopGuard())
  hello(): { ok: boolean } {
    return { ok: true };
  }
}

@Controller()
class GuardReqController {
  @Get('hello')
  @UseGuards(new NoopGuard())
  hello(@Req() _req: unknown): { ok: boolean } {
    return { ok: true };
  }
}

@Controller()
class BalancedController {
  @Get('hello')
  @Balanced({ capacity: 100_000 })
  hello(): { ok: boolean } {
    return { ok: true };
  }
}

@Controller()
class WatchedByEndpointsController {
  @Get('watched')
  watched(): { ok: boolean } {
    return { ok: true };
  }
}

function appModule(): DynamicModule {
  if (variant === 'plain') return { module: class PlainApp {}, controllers: [PlainController] };
  if (variant === 'noop') return { module: class NoopApp {}, controllers: [NoopController] };
  if (variant === 'guard-req')
    return { module: class GuardReqApp {}, controllers: [GuardReqController] };
  if (variant === 'guard') return { module: class GuardApp {}, controllers: [GuardController] };
  const admission = variant.endsWith('-interceptor') ? 'interceptor' : 'guard';
  const endpointsOnly = variant === 'endpoints-unwatched';
  const storage = variant.startsWith('redis')
    ? { type: 'redis' as const, url: redisUrl, keyPrefix: `bench${process.pid}` }
    : { type: 'memory' as const };
  return {
    module: class BalancedApp {},
    imports: [
      BalancerModule.forRoot({
        storage,
        healthEndpoint: false,
        ui: { enable: false },
        metrics: false,
        logger: false,
        admission,
        endpoints: endpointsOnly ? { '/watched': { capacity: 100_000 } } : {},
      }),
    ],
    controllers: [
      variant === 'module-only' || endpointsOnly ? PlainController : BalancedController,
      ...(endpointsOnly ? [WatchedByEndpointsController] : []),
    ],
  };
}

async function main(): Promise<void> {
  const adapter = platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app = await NestFactory.create(appModule(), adapter, { logger: false });
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.stdout.write(`LISTENING ${port}\n`);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
