import { ProbeRunner } from '../../src';
import { PoolRegistry } from '../../src/admission/pool-registry';
import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { sharedRedis, uniquePrefix } from '../harness/redis';
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
describe('admission while probing with Redis: two workers, one global interim cap', () => {
  let redis: { url: string; stop(): Promise<void> };
  const apps: RunningApp[] = [];
  beforeAll(async () => {
    redis = await sharedRedis();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await redis.stop();
  });

  it('real requests to either worker share the levels of the one probe', async () => {
    const model = new CountingModel();
    const storage = { url: redis.url, keyPrefix: uniquePrefix('interim') };
    for (const platform of PLATFORMS) {
      apps.push(await startApp(platform, appModule(model, options(storage))));
    }
    watch(model, apps);
    await waitFor(
      async () => (await poolStats(apps[1].url, POOL)).capacity === 1,
      10_000,
      'the interim cap in the second worker',
    );
    // Every worker shows the global interim cap and where it came from, the prober or not.
    for (const a of apps) {
      const view = (await poolStats(a.url, POOL)) as unknown as {
        probe: { interim_capacity: number | null; interim_from: string | null };
      };
      expect(view.probe).toMatchObject({ interim_capacity: 1, interim_from: 'minimum' });
    }
    const traffic = realTraffic(
      apps.map((a) => a.url),
      3,
    );
    await Promise.all(apps.map((a) => a.app.get(ProbeRunner).whenIdle()));
    await traffic.stop();

    const probers = apps.filter(
      (a) => a.app.get(PoolRegistry).get(POOL)!.probeStatus.state === 'done',
    );
    expect(probers).toHaveLength(1);
    for (const a of apps) {
      expect(await poolStats(a.url, POOL)).toMatchObject({ capacity: 2, capacity_source: 'probe' });
    }
    expect(traffic.statuses.filter((s) => s !== 200)).toEqual([]);
    checkLevels(model);
  });
});
