import type { RunningApp } from '../harness/platforms';
import { startMemoryApp } from './memory-app';
import {
  A_CLIENTS,
  B_CLIENTS,
  B_MEDIAN_BOUND_MS,
  B_SAMPLES_FAIR,
  B_SAMPLES_FIFO,
  PROPERTY_PLATFORMS,
  TENANT_S,
  expectTenantIsolation,
  runTenants,
} from './properties';

/*
 * Issue 11, tenants, memory store: capacity 2, tenant A keeps 24 requests in flight, tenant B
 * keeps 2. With `tenant` (round-robin across tenants) B's median latency stays within 5 S
 * (model 2 S, see properties.ts) and A gets the rest of the capacity; the same load on a pool
 * without tenants (FIFO) puts B's median beyond that bound (model 13 S), so the bound measures
 * the policy.
 */
describe.each(PROPERTY_PLATFORMS)('tenants on the memory store (%s)', (platform) => {
  let app: RunningApp;

  beforeAll(async () => {
    app = await startMemoryApp(platform);
  });
  afterAll(async () => {
    await app?.close();
  });

  it(`light tenant B (${B_CLIENTS} in flight) keeps its median within ${B_MEDIAN_BOUND_MS} ms next to A (${A_CLIENTS}), FIFO does not (S = ${TENANT_S} ms)`, async () => {
    const fair = await runTenants({
      path: '/tenanted',
      aUrl: () => app.url,
      bUrl: () => app.url,
      statsUrl: app.url,
      bSamples: B_SAMPLES_FAIR,
    });
    const fifo = await runTenants({
      path: '/fifo',
      aUrl: () => app.url,
      bUrl: () => app.url,
      statsUrl: app.url,
      bSamples: B_SAMPLES_FIFO,
    });
    expectTenantIsolation(fair, fifo);
  }, 60_000);
});
