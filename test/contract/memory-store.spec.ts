import { MemoryCapacityStore } from '../../src/storage/memory-capacity.store';
import { runCapacityStoreContract } from './capacity-store.contract';
import { runCostUnitsContract } from './cost-units.contract';
import { runOverloadPoliciesContract } from './overload-policies.contract';

async function create(): Promise<MemoryCapacityStore> {
  const store = new MemoryCapacityStore();
  await store.init();
  return store;
}

describe('MemoryCapacityStore contract', () => {
  runCapacityStoreContract(create);
});

describe('MemoryCapacityStore overload policies', () => {
  runOverloadPoliciesContract(create, { tryAcquire: true });
});

describe('MemoryCapacityStore cost units', () => {
  runCostUnitsContract(create);
});
