// Placeholder until the Redis store lands (issue 4); replaced wholesale by that work.
import type { ResolvedBalancerOptions } from '../balancer/resolve-options';
import { MemoryCapacityStore } from './memory-capacity.store';

export class RedisCapacityStore extends MemoryCapacityStore {
  constructor(_storage: ResolvedBalancerOptions['storage'], _opts: { logger: boolean }) {
    super();
    throw new Error('storage.type redis is not implemented yet');
  }
}
