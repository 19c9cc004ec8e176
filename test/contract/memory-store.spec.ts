import { MemoryCapacityStore } from '../../src/admission/memory-capacity.store';
import { runCapacityStoreContract } from './capacity-store.contract';

describe('MemoryCapacityStore contract', () => {
  runCapacityStoreContract(async () => {
    const store = new MemoryCapacityStore();
    await store.init();
    return store;
  });
});
