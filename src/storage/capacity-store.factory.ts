import type { ResolvedBalancerOptions } from '../config/resolve-options';
import type { CapacityStore } from './capacity-store.interface';
import { MemoryCapacityStore } from './memory-capacity.store';

/** Build the store the options ask for. ioredis is loaded only when Redis is used. */
export async function createCapacityStore(
  options: ResolvedBalancerOptions,
): Promise<CapacityStore> {
  if (options.storage.type === 'redis') {
    const { RedisCapacityStore } = await import('./redis-capacity.store');
    return new RedisCapacityStore(options.storage, { logger: options.logger });
  }
  return new MemoryCapacityStore({ logger: options.logger });
}
