/*
 * One worker process of the Redis overload suite (spawned by test/redis/workers.ts): the overload
 * app (overload-app.ts) on the Redis store, once per adapter the suite asks for (`platforms`,
 * each on its own port and key prefix: one process serves every adapter's cases, so the suite
 * starts two workers, not two per adapter). Handlers note their start in a Redis list, so the
 * test reads one global start order across workers. Prints `PORTS express:<port> …` then
 * `READY <port>`.
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
  redisUrl: string;
  /** Each adapter's app uses `<keyPrefix>-<platform>`. */
  keyPrefix: string;
  /** The adapters to serve the app on (an unused one only lengthens the start). */
  platforms: PlatformName[];
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as OverloadWorkerConfig;

/** The start log shared by every worker of the suite (one per key prefix). */
class RedisStartLog implements StartLog {
  private readonly redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3 });
  constructor(private readonly key: string) {}
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

async function listen(platform: PlatformName): Promise<number> {
  const keyPrefix = `${config.keyPrefix}-${platform}`;
  const module = overloadAppModule(config, new RedisStartLog(`${keyPrefix}:test:starts`), {
    // No restart hold: no balancer used the suite's Redis before it started it.
    storage: { type: 'redis', url: config.redisUrl, keyPrefix, restartHold: 0 },
  });
  const adapter = platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app = await NestFactory.create(module, adapter, { logger: false });
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

async function main(): Promise<void> {
  const ports = await Promise.all(config.platforms.map(listen));
  const list = config.platforms.map((p, i) => `${p}:${ports[i]}`).join(' ');
  process.stdout.write(`PORTS ${list}\nREADY ${ports[0]}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${String(err)}\n`);
  process.exit(1);
});
