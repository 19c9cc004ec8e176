import type { RunningApp } from '../harness/platforms';
import { startMemoryApp } from './memory-app';
import {
  BURST_MS,
  OVERLOAD_RATE,
  PROPERTY_PLATFORMS,
  TARGET_MS,
  TARGET_S,
  expectBurstsNotShed,
  expectStandingOverloadShed,
  runBursts,
  runStandingOverload,
} from './properties';

/*
 * Issue 11, queueTargetMs, memory store (capacity 2, S = 100 ms, T = 2 S): bursts shorter than
 * the interval shed nothing although their waits pass T; a standing 3 x overload is shed early
 * (fast 503 `shed` with Retry-After) and the served requests' waits stay bounded. Bounds and
 * their derivation: properties.ts.
 */
describe.each(PROPERTY_PLATFORMS)('queueTargetMs on the memory store (%s)', (platform) => {
  let app: RunningApp;

  beforeAll(async () => {
    app = await startMemoryApp(platform);
  });
  afterAll(async () => {
    await app?.close();
  });

  it(`bursts of ${BURST_MS} ms past the target (T = ${TARGET_MS} ms) shed nothing`, async () => {
    expectBurstsNotShed(await runBursts(() => app.url, app.url));
  });

  it(`a standing overload (${OVERLOAD_RATE}/s open loop, S = ${TARGET_S} ms) is shed early`, async () => {
    expectStandingOverloadShed(await runStandingOverload(() => app.url));
  }, 30_000);
});
