import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';
import { POOL, RecordingModel, appModule, closedLoop, type History } from './recovery-fixtures';

/*
 * Issue 19: a pool whose startup probe failed is handed to the adaptive controller although its
 * options leave adaptive off, and its capacity grows from live traffic. Nothing here reads
 * machine speed (the only bound is a 60 s wait for one step up, where the controller decides
 * every ~0.25 s): it runs in the parallel pass, on both adapters. How fast the controller
 * follows and climbs is test/adaptive/recovery.e2e-spec.ts, in the timing pass.
 */

describe.each(PLATFORMS)('after a failed probe on %s', (platform) => {
  let app: RunningApp | undefined;
  let load: { stop(): Promise<void> } | undefined;
  afterEach(async () => {
    await load?.stop();
    await app?.close();
    load = undefined;
    app = undefined;
  });

  it('the capacity converges from live traffic although adaptive is off', async () => {
    const model = new RecordingModel();
    app = await startApp(
      platform,
      appModule(model, {
        healthEndpoint: false,
        ui: { enable: false },
        defaultCapacity: 2,
        // The probe's body is refused (422): the probe fails at once.
        endpoints: { [POOL]: { method: 'POST', body: { wrong: true } } },
      }),
    );
    const url = app.url;
    await waitFor(
      async () =>
        ((await poolStats(url, POOL)) as unknown as { probe: { state: string } }).probe.state ===
        'failed',
      10_000,
      'the probe to fail',
    );
    const base = (await poolStats(url, POOL)).capacity!;
    expect(base).toBeLessThan(model.k);
    const traffic = closedLoop(url, 24);
    load = traffic;
    // Adaptive is off in the options; the failed probe hands the pool to the controller.
    await waitFor(async () => (await poolStats(url, POOL)).capacity! > base, 60_000, 'a step up');
    const stats = (await poolStats(url, POOL)) as unknown as {
      capacity: number;
      capacity_source: string;
      adaptive: { reason: string; max: number; history: History[] };
    };
    expect(stats.capacity_source).toBe('adaptive');
    expect(stats.adaptive.reason).toBe('probe');
    expect(stats.capacity).toBeLessThanOrEqual(stats.adaptive.max);
    await traffic.stop();
    load = undefined;
    expect([...traffic.statuses.keys()]).toEqual([200]);
  });
});
