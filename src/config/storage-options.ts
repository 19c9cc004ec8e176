import 'reflect-metadata';
import { IsIn, IsNumber, IsObject, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

/** Where caps, queues and probe results live (`storage`). */
export class StorageOptions {
  /**
   * `memory` keeps everything in this process; `redis` shares caps, queues and probe results
   * between every worker and host that uses the same Redis and `keyPrefix`.
   * @default 'memory'
   */
  @IsOptional()
  @IsIn(['memory', 'redis'])
  type?: 'memory' | 'redis';

  /** Redis URL, e.g. `redis://localhost:6379/0`. Used when no `client` or `redis` is given. */
  @IsOptional()
  @IsString()
  @Matches(/^rediss?:\/\//, { message: '$property must be a redis:// or rediss:// URL' })
  url?: string;

  /**
   * ioredis constructor options (Sentinel, TLS, …), or `{ cluster: [nodes], options }` for a
   * Redis Cluster. TypeScript only.
   */
  @IsOptional()
  @IsObject()
  redis?: Record<string, unknown>;

  /** An existing ioredis client (or Cluster). The balancer duplicates it and never closes it. */
  @IsOptional()
  client?: unknown;

  /**
   * Prefix of every Redis key. Two apps sharing one Redis must use different prefixes.
   * @default 'balancer'
   */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9:_.-]+$/, { message: '$property may only hold letters, digits and : _ . -' })
  keyPrefix?: string;

  /**
   * Seconds a slot lease lives without a heartbeat. A killed worker's slots return within it.
   * @default 5
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(1)
  @Max(3600)
  leaseTtl?: number;

  /**
   * Seconds a worker that lost Redis keeps admitting, on the slots it already holds, after its
   * last heartbeat; then it answers 503 until Redis is back. Must be shorter than `leaseTtl`:
   * the difference is the margin before those slots' leases can expire in Redis.
   * @default 0.6 x leaseTtl
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  @Max(3600)
  fallbackWindow?: number;

  /**
   * Seconds a pool's state created on a Redis that started less than this ago waits before its
   * first grant, whoever creates it: that Redis may have replaced one (restart without
   * persistence) whose workers still run requests on their old leases, which they give up within
   * `leaseTtl`. Set 0 only for a Redis that no balancer used before (e.g. one a test started).
   * @default leaseTtl
   */
  @IsOptional()
  @IsNumber({}, { message: '$property must be a number of seconds' })
  @Min(0)
  @Max(3600)
  restartHold?: number;
}
