import { RedisCapacityStore } from '../../src/storage/redis-capacity.store';
import { sharedRedis, uniquePrefix } from '../harness/redis';
import { runCapacityStoreContract } from './capacity-store.contract';
import { runCostUnitsContract } from './cost-units.contract';
import { runOverloadPoliciesContract } from './overload-policies.contract';

describe('RedisCapacityStore contract (real redis-server)', () => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;

  beforeAll(async () => {
    redis = await sharedRedis();
  });

  afterAll(async () => {
    await redis.stop();
  });

  async function create(): Promise<RedisCapacityStore> {
    const store = new RedisCapacityStore(
      { type: 'redis', url: redis.url, keyPrefix: uniquePrefix('contract'), leaseTtl: 5 },
      { logger: false },
    );
    await store.init();
    return store;
  }

  runCapacityStoreContract(create);

  describe('overload policies', () => {
    runOverloadPoliciesContract(create);
  });

  describe('cost units', () => {
    runCostUnitsContract(create);
  });
});
