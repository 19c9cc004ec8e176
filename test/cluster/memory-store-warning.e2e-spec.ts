import type { ChildProcess } from 'node:child_process';
import { killAll, type Worker } from '../redis/workers';
import { waitFor } from '../harness/wait-for';
import { K, memoryStoreWarnings, startCluster, startModel } from './cluster-process';

/*
 * The memory store keeps caps, queues and probes per process: under `node:cluster` each worker
 * admits its own `capacity`. Each worker says so once at startup, pointing to the Redis store.
 */

describe('node:cluster workers with the memory store', () => {
  const children = new Set<ChildProcess>();
  let model: Worker;
  let app: Worker;

  afterAll(async () => {
    await app?.kill('SIGTERM');
    await model?.kill('SIGTERM');
    await killAll(children);
  });

  it('warns once per worker at startup, pointing to the Redis store', async () => {
    model = await startModel(children);
    app = await startCluster(
      {
        workers: 2,
        storage: { type: 'memory' },
        modelUrl: model.url,
        pools: ['a'],
        capacity: K,
        probeOnStartup: false,
      },
      children,
    );
    await waitFor(
      () => memoryStoreWarnings(app.output()).length >= 2,
      30_000,
      'the memory-store warning of both workers',
    );
    const lines = memoryStoreWarnings(app.output());
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/type: 'redis'/);
  }, 300_000);
});
