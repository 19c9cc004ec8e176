import { MemoryCapacityStore } from '../../src/storage/memory-capacity.store';
import { runCapacityStoreContract } from './capacity-store.contract';

describe('MemoryCapacityStore contract', () => {
  runCapacityStoreContract(async () => {
    const store = new MemoryCapacityStore();
    await store.init();
    return store;
  });
});
