/*
 * One worker process of the Redis overload suite (spawned by test/redis/workers.ts): the overload
 * app (overload-app.ts) on the Redis store, on the adapter named in WORKER_CONFIG. Handlers note
 * their start in a Redis list, so the test reads one global start order across workers.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import Redis from 'ioredis';
import type { AddressInfo } from 'node:net';
import type { PlatformName } from '../harness/platforms';
import { overloadAppModule, type OverloadAppConfig, type StartLog } from './overload-app';

export interface OverloadWorkerConfig extends OverloadAppConfig {
  platform: PlatformName;
  redisUrl: string;
  keyPrefix: string;
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as OverloadWorkerConfig;

/** The start log shared by every worker of the suite. */
class RedisStartLog implements StartLog {
  private readonly redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3 });
  private readonly key = `${config.keyPrefix}:test:starts`;
  async push(id: string): Promise<void> {
    await this.redis.rpush(this.key, id);
  }
  async list(): Promise<string[]> {
    return this.redis.lrange(this.key, 0, -1);
  }
  async clear(): Promise<void> {
    await this.redis.del(this.key);
  }
}

async function main(): Promise<void> {
  const module = overloadAppModule(config, new RedisStartLog(), {
    storage: { type: 'redis', url: config.redisUrl, keyPrefix: config.keyPrefix },
  });
  const adapter = config.platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app = await NestFactory.create(module, adapter, { logger: false });
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.stdout.write(`READY ${port}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${String(err)}\n`);
  process.exit(1);
});
