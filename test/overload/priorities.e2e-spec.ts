import type { RunningApp } from '../harness/platforms';
import { PLATFORMS, startMemoryApp } from './memory-app';
import { expectPriorityServedNext, LOW_COUNT, runPriority } from './properties';

/*
 * Issue 11, priorities, memory store: with both slots held and a queue of priority-0 requests,
 * a priority-1 request that arrives last is granted the next free slot; the low ones follow in
 * their arrival order.
 */
describe.each(PLATFORMS)('priorities on the memory store (%s)', (platform) => {
  let app: RunningApp;

  beforeAll(async () => {
    app = await startMemoryApp(platform);
  });
  afterAll(async () => {
    await app?.close();
  });

  it(`a high-priority request behind ${LOW_COUNT} low-priority ones is served next`, async () => {
    const run = await runPriority({
      holdUrl: app.url,
      lowUrl: app.url,
      highUrl: app.url,
      statsUrl: app.url,
      logUrl: app.url,
    });
    expectPriorityServedNext(run);
  });
});
