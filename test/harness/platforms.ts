import type { INestApplication, LoggerService, Type } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';

export type PlatformName = 'express' | 'fastify';
export const PLATFORMS: PlatformName[] = ['express', 'fastify'];

/** How `BalancerModule` attaches admission (`admission` option). */
export type AdmissionMode = 'guard' | 'interceptor';
/** Every platform with both admission paths, for suites that must hold on each. */
export const ADMISSION_CASES: Array<[PlatformName, AdmissionMode]> = PLATFORMS.flatMap((p) =>
  (['guard', 'interceptor'] as const).map((m): [PlatformName, AdmissionMode] => [p, m]),
);

export interface RunningApp {
  app: INestApplication;
  url: string;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Called before listen (global prefix, versioning …). */
  setup?: (app: INestApplication) => void;
  /** A logger to capture Nest's and the balancer's lines; default: silent. */
  logger?: LoggerService;
  /** Nest's `bodyParser` application option (default true). */
  bodyParser?: boolean;
}

/** Compile `module`, listen on 127.0.0.1:0 with the given adapter, and return its base URL. */
export async function startApp(
  platform: PlatformName,
  module: Type,
  opts: StartOptions = {},
): Promise<RunningApp> {
  const builder = Test.createTestingModule({ imports: [module] });
  if (opts.logger) builder.setLogger(opts.logger);
  const ref = await builder.compile();
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const app = ref.createNestApplication(adapter, {
    logger: opts.logger ?? false,
    bodyParser: opts.bodyParser ?? true,
  });
  opts.setup?.(app);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as AddressInfo;
  const url = `http://127.0.0.1:${address.port}`;
  let closed = false;
  return {
    app,
    url,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}

/** Collects log lines for assertions. */
export class CapturingLogger implements LoggerService {
  readonly lines: Array<{ level: string; message: string; context?: string }> = [];
  log(message: unknown, context?: string): void {
    this.lines.push({ level: 'log', message: String(message), context });
  }
  warn(message: unknown, context?: string): void {
    this.lines.push({ level: 'warn', message: String(message), context });
  }
  error(message: unknown, context?: string): void {
    this.lines.push({ level: 'error', message: String(message), context });
  }
  debug(): void {}
  verbose(): void {}
  messages(level?: string): string[] {
    return this.lines.filter((l) => !level || l.level === level).map((l) => l.message);
  }
}
