import { ProbeRunner } from '../../src';
import { PoolRegistry } from '../../src/admission/pool-registry';
import { PLATFORMS, startApp, type PlatformName, type RunningApp } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';
import {
  POOL,
  CountingModel,
  appModule,
  options,
  watch,
  realTraffic,
  checkLevels,
} from './probing-admission-fixtures';
describe.each(PLATFORMS)('admission while probing on %s', (platform: PlatformName) => {
  let app: RunningApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('serves a real request sent 1 s after startup before the probe ends; the model never sees more than the level', async () => {
    const model = new CountingModel();
    app = await startApp(platform, appModule(model, options()));
    watch(model, [app]);
    const url = app.url;
    const registry = app.app.get(PoolRegistry);
    const started = Date.now();

    await waitFor(() => Date.now() - started >= 1000, 2000, '1 s after startup');
    const early = await poolStats(url, POOL);
    expect(early).toMatchObject({ capacity: 1, capacity_source: 'probing' });
    const first = await fetch(`${url}${POOL}`, { method: 'POST' });
    expect(first.status).toBe(200);
    // Served while the probe still runs (a 3 s request; the probe needs well over 20 s).
    expect(registry.get(POOL)!.probeStatus.state).toBe('running');
    const servedAfterMs = Date.now() - started;

    const stats = (await poolStats(url, POOL)) as unknown as {
      probe: { interim_capacity: number; interim_from: string; level: number | null };
    };
    expect(stats.probe.interim_capacity).toBe(1);
    expect(stats.probe.interim_from).toBe('minimum');
    expect(stats.probe.level).toBeGreaterThanOrEqual(1);

    // Real traffic through the rest of the probe.
    const traffic = realTraffic([url], 2);
    await app.app.get(ProbeRunner).whenIdle();
    await traffic.stop();

    const done = await poolStats(url, POOL);
    expect(done).toMatchObject({ capacity: 2, capacity_source: 'probe' });
    expect(traffic.statuses.length).toBeGreaterThan(0);
    expect(traffic.statuses.filter((s) => s !== 200)).toEqual([]);
    checkLevels(model);
    console.log(
      `[probing-admission ${platform}] first real request served ${servedAfterMs} ms after startup; ` +
        `${traffic.statuses.length} more during the probe; peak ${model.model.peak} in the model`,
    );
  });
});
