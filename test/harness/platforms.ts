import type { INestApplication, Type } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';

export type PlatformName = 'express' | 'fastify';
export const PLATFORMS: PlatformName[] = ['express', 'fastify'];

export interface RunningApp {
  app: INestApplication;
  url: string;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Called before listen (global prefix, versioning …). */
  setup?: (app: INestApplication) => void;
  logger?: boolean;
}

/** Compile `module`, listen on 127.0.0.1:0 with the given adapter, and return its base URL. */
export async function startApp(platform: PlatformName, module: Type, opts: StartOptions = {}): Promise<RunningApp> {
  const ref = await Test.createTestingModule({ imports: [module] }).compile();
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const app = ref.createNestApplication(adapter, { logger: opts.logger ? undefined : false });
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
