import { Controller, HttpCode, Module, Post, type Type } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { BalancerModule, CapacityStore, ProbeRunner } from '../../src';
import { startApp, type RunningApp } from '../harness/platforms';
import { poolStats, waitFor } from '../harness/wait-for';

/*
 * The dashboard while a slow route is probed (issue 19): the capacity line shows the interim cap
 * and where it came from, the probe summary the level being measured. Stats are read beside it.
 */

const OUT = join(__dirname, '..', '..', 'test-output');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];
/** A slow route: each level of the probe takes several seconds. */
const S = 1000;

@Controller()
class SlowController {
  @Post('generate')
  @HttpCode(200)
  async generate(): Promise<{ ok: boolean }> {
    await new Promise((r) => setTimeout(r, S));
    return { ok: true };
  }
}

function appModule(): Type {
  @Module({
    imports: [
      BalancerModule.forRoot({
        healthEndpoint: false,
        latencyThresholdMs: 10_000,
        probe: { minSamples: 3, levelLatencies: 2, maxConcurrency: 2 },
        endpoints: { '/generate': { method: 'POST' } },
      }),
    ],
    controllers: [SlowController],
  })
  class ProbingDashboardModule {}
  return ProbingDashboardModule;
}

jest.setTimeout(120_000);

describe('dashboard while probing', () => {
  let browser: Browser;
  let app: RunningApp | undefined;
  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await app?.close();
    await browser?.close();
  });

  it('shows the interim cap, its source and the level being measured', async () => {
    app = await startApp('express', appModule());
    const url = app.url;
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`${url}/balancer/ui`);
      const card = page.locator('[data-pool="/generate"]');
      await card.waitFor({ timeout: 15_000 });
      const source = card.locator('[data-field="source"]');
      await waitFor(
        async () => (await source.textContent()) === 'interim (minimum)',
        15_000,
        'the interim cap on the capacity line',
      );
      expect(await card.locator('[data-field="capacity"]').textContent()).toBe('1');
      const summary = card.locator('.probe-summary');
      await waitFor(
        async () =>
          /^probing now: level [12] · real requests at interim cap 1 \(minimum\)$/.test(
            (await summary.textContent()) ?? '',
          ),
        15_000,
        'the level in the probe summary',
      );
      const stats = (await poolStats(url, '/generate')) as unknown as {
        probe: { interim_capacity: number; interim_from: string; level: number };
      };
      expect(stats.probe).toMatchObject({ interim_capacity: 1, interim_from: 'minimum' });
      expect([1, 2]).toContain(stats.probe.level);
      await page.screenshot({ path: join(OUT, 'dashboard-probing.png'), fullPage: true });

      // Once measured, the interim fields are gone and the source is the probe.
      await app.app.get(ProbeRunner).whenIdle();
      await waitFor(async () => (await source.textContent()) === 'probed', 15_000, 'probed');
      const done = (await poolStats(url, '/generate')) as unknown as {
        capacity: number;
        probe: { interim_capacity: number | null; level: number | null };
      };
      expect(done.probe).toMatchObject({ interim_capacity: null, level: null });
      expect(done.capacity).toBe(await capacityOf(app));
    } finally {
      await context.close();
    }
  });
});

async function capacityOf(app: RunningApp): Promise<number | null> {
  return (await app.app.get<CapacityStore>(CapacityStore).snapshot('/generate')).capacity;
}
