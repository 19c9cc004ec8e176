import Redis, { Cluster, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ResolvedBalancerOptions } from '../../config/resolve-options';

export type RedisClient = Redis | Cluster;

/** The two connections the store uses, and which of them it must close. */
export interface RedisConnections {
  /** Scripts and plain commands. */
  commands: RedisClient;
  /** Grant notifications (a connection in subscriber mode can do nothing else). */
  subscriber: RedisClient;
  /** False when `commands` is the user's client: we never close it. */
  ownsCommands: boolean;
}

/**
 * Options for connections the store creates. Commands fail fast while disconnected (the store
 * falls back to local admission instead of queueing them for later): no offline queue, no
 * replay of unanswered commands after a reconnect. Reconnection itself never stops.
 */
const COMMAND_DEFAULTS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 2000,
  retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1000),
};

/** The subscriber queues its SUBSCRIBE until connected and resubscribes after reconnects. */
const SUBSCRIBER_OVERRIDES: RedisOptions = {
  enableOfflineQueue: true,
  maxRetriesPerRequest: null,
  autoResubscribe: true,
};

function isClient(value: unknown): value is RedisClient {
  return value instanceof Redis || value instanceof Cluster || isDuck(value);
}

/** A client from another copy of ioredis (another node_modules) fails `instanceof`. */
function isDuck(value: unknown): value is RedisClient {
  const v = value as Partial<Record<string, unknown>> | null;
  return (
    !!v &&
    typeof v.duplicate === 'function' &&
    typeof v.defineCommand === 'function' &&
    typeof v.status === 'string'
  );
}

function duplicate(client: RedisClient, overrides: RedisOptions): RedisClient {
  if ((client as { isCluster?: boolean }).isCluster) {
    const cluster = client as Cluster;
    return cluster.duplicate([], {
      enableOfflineQueue: true,
      redisOptions: { ...(cluster.options.redisOptions ?? {}), ...overrides },
    });
  }
  return (client as Redis).duplicate(overrides);
}

/**
 * Build the connections from `storage`: an existing `client` (used for commands, duplicated for
 * the subscriber, never closed), `redis: { cluster: [nodes], options }` for a Cluster, or
 * `url` and/or `redis` ioredis options (standalone or Sentinel).
 */
export function createRedisConnections(
  storage: ResolvedBalancerOptions['storage'],
): RedisConnections {
  if (storage.client !== undefined) {
    if (!isClient(storage.client))
      throw new Error('storage.client must be an ioredis client or Cluster');
    const commands = storage.client;
    return { commands, subscriber: duplicate(commands, SUBSCRIBER_OVERRIDES), ownsCommands: false };
  }
  const redis = storage.redis ?? {};
  let commands: RedisClient;
  if (Array.isArray(redis.cluster)) {
    const clusterOptions = (redis.options ?? {}) as ClusterOptions;
    commands = new Cluster(redis.cluster as ClusterNode[], {
      enableOfflineQueue: false,
      clusterRetryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 1000),
      ...clusterOptions,
      redisOptions: { ...COMMAND_DEFAULTS, ...(clusterOptions.redisOptions ?? {}) },
    });
  } else {
    const options = { ...COMMAND_DEFAULTS, ...(redis as RedisOptions) };
    commands = storage.url ? new Redis(storage.url, options) : new Redis(options);
  }
  return { commands, subscriber: duplicate(commands, SUBSCRIBER_OVERRIDES), ownsCommands: true };
}
