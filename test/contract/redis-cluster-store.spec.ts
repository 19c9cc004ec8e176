import { RedisCapacityStore } from '../../src/storage/redis-capacity.store';
import { uniquePrefix } from '../harness/redis';
import { RedisCluster } from '../harness/redis-cluster';
import { runCapacityStoreContract } from './capacity-store.contract';
import { runCostUnitsContract } from './cost-units.contract';
import { runOverloadPoliciesContract } from './overload-policies.contract';

describe('RedisCapacityStore contract on a Redis Cluster of three masters', () => {
  let cluster: RedisCluster;
  let n = 0;

  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  async function create(): Promise<RedisCapacityStore> {
    // Each store is seeded with another node first.
    const i = n++ % 3;
    const seeds = [...cluster.seeds.slice(i), ...cluster.seeds.slice(0, i)];
    const store = new RedisCapacityStore(
      {
        type: 'redis',
        redis: { cluster: seeds },
        keyPrefix: uniquePrefix('ccontract'),
        leaseTtl: 5,
      },
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
