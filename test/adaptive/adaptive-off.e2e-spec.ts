import type { Type } from '@nestjs/common';
import { startApp, type RunningApp } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';
import {
  adaptiveAppModule,
  closedLoop,
  p99,
  ShiftingModel,
  type ClosedLoop,
} from './adaptive-fixtures';

/**
 * The control run of `adaptive.e2e-spec.ts` (same backend: true capacity 8, 100 ms per request,
 * 100 ms more for every request beyond the capacity, dropping to 4 mid-run; 24 closed-loop
 * clients), with adaptive capacity off: the cap stays at its manual 8 and the backend thrashes.
 * Nothing here reads machine speed (a busy machine only makes the thrashing p99 larger), so it
 * runs in the parallel pass; the adaptive run's follow and climb times are the timing pass's.
 */
const S = 100;
/** The adaptive run's p99 limit: the thrashing backend's p99 must exceed it. */
const P99_LIMIT_MS = 3 * S;
const POOL = '/predict';
const ALL_SERVED = { statuses: { 200: expect.any(Number) }, errors: [] };

jest.setTimeout(120_000);

async function completions(model: ShiftingModel, since: number, n: number): Promise<number[]> {
  await waitFor(() => model.since(since).length >= n, 60_000, `${n} completions`);
  return model.since(since);
}

describe('adaptive capacity off (express)', () => {
  let app: RunningApp | undefined;
  let load: ClosedLoop | undefined;
  afterEach(async () => {
    await load?.stop();
    await app?.close();
  });

  it('with adaptive off the capacity stays put while the backend thrashes', async () => {
    const model = new ShiftingModel(8, S);
    const module = adaptiveAppModule(model, {
      healthEndpoint: false,
      probeOnStartup: false,
      ui: { enable: false },
      endpoints: { [POOL]: { method: 'POST', capacity: 8, adaptive: false } },
    });
    app = await startApp('express', module as unknown as Type);
    load = closedLoop([app.url], 24);
    await completions(model, 0, 100);
    model.k = 4;
    const dropped = Date.now();
    // As many completions as the adaptive run needs to follow, several times over.
    const during = p99(await completions(model, dropped, 200));
    const stats = (await poolStats(app.url, POOL)) as Record<string, unknown>;
    expect(stats).toMatchObject({ capacity: 8, capacity_source: 'manual', adaptive: null });
    expect(during).toBeGreaterThan(P99_LIMIT_MS);
    expect(model.peak).toBe(8);
    const outcome = await load.stop();
    load = undefined;
    expect(outcome).toEqual(ALL_SERVED);
  });
});
