import type { INestApplication, LoggerService, NestApplicationOptions, Type } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import type { PlatformName } from '../harness/platforms';

export { waitFor } from '../harness/wait-for';

/** Resolves (or rejects) `p`, or fails after `timeoutMs`: "nothing hangs". */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Handlers wait on it while closed; `open()` lets every waiter (and later ones) through.
 * Unlike the harness's one-shot `Latch`, it counts entries and can be closed again.
 */
export class WorkLatch {
  private waiters: Array<() => void> = [];
  private isOpen = false;
  /** How many handlers have started waiting since the last `reset()`. */
  entered = 0;

  wait(): Promise<void> {
    this.entered++;
    if (this.isOpen) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  open(): void {
    this.isOpen = true;
    for (const w of this.waiters.splice(0)) w();
  }

  reset(): void {
    this.open();
    this.isOpen = false;
    this.entered = 0;
  }
}

/** A Nest logger that keeps every line, for assertions on startup messages. */
export class CapturingLogger implements LoggerService {
  readonly lines: Array<{ level: string; message: string; context?: string }> = [];
  log(message: unknown, context?: string): void {
    this.add('log', message, context);
  }
  warn(message: unknown, context?: string): void {
    this.add('warn', message, context);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.add(
      'error',
      message,
      typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined,
    );
  }
  debug(): void {}
  verbose(): void {}
  warnings(match: string | RegExp): string[] {
    return this.lines
      .filter(
        (l) =>
          l.level === 'warn' &&
          (typeof match === 'string' ? l.message.includes(match) : match.test(l.message)),
      )
      .map((l) => l.message);
  }
  private add(level: string, message: unknown, context?: string): void {
    this.lines.push({ level, message: String(message), context });
  }
}

export interface HealthApp {
  app: INestApplication;
  url: string;
  logs: CapturingLogger;
  /** Idempotent; safe in afterEach after a test already closed the app. */
  close(): Promise<void>;
}

/**
 * Like `startApp` of the shared harness (real listen on 127.0.0.1:0), plus a capturing logger
 * and `forceCloseConnections`, which the drain-timeout test needs on both adapters.
 */
export async function startHealthApp(
  platform: PlatformName,
  module: Type,
  opts: { forceCloseConnections?: boolean } = {},
): Promise<HealthApp> {
  const ref = await Test.createTestingModule({ imports: [module] }).compile();
  const logs = new CapturingLogger();
  const force = opts.forceCloseConnections ?? false;
  const adapter =
    platform === 'express'
      ? new ExpressAdapter()
      : new FastifyAdapter({ forceCloseConnections: force });
  const appOptions: NestApplicationOptions = { logger: logs, forceCloseConnections: force };
  const app = ref.createNestApplication(adapter, appOptions);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    logs,
    close: () => (closing ??= app.close()),
  };
}
