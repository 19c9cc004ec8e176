import { Controller, Module, Post } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Balanced, BalancerModule } from '../../src';
import { startApp, type RunningApp } from '../harness/platforms';
import { Latch, poolStats, waitFor } from '../harness/wait-for';

const OUT = join(__dirname, '..', '..', 'test-output');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];
const HEADER = 'x-request-timeout-ms';

const hold = { latch: new Latch() };

@Controller()
class DeadlineController {
  @Post('llm')
  @Balanced({ capacity: 1, deadlineHeader: HEADER })
  async llm(): Promise<string> {
    await hold.latch.promise;
    return 'ok';
  }

  /** A pool without deadline rejections: its card shows no deadline counters. */
  @Post('plain')
  @Balanced({ capacity: 1 })
  plain(): string {
    return 'ok';
  }
}

@Module({
  imports: [BalancerModule.forRoot({ healthEndpoint: false, probeOnStartup: false })],
  controllers: [DeadlineController],
})
class DeadlineDashboardModule {}

describe('deadline rejections in the dashboard (real browser)', () => {
  let browser: Browser;
  let running: RunningApp | undefined;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    hold.latch.open();
    await running?.close();
    await browser?.close();
  });

  it('shows 504 deadline apart from the queue timeouts, only on the pool that counted one', async () => {
    running = await startApp('express', DeadlineDashboardModule);
    const { url } = running;
    const holder = fetch(`${url}/llm`, { method: 'POST' });
    await waitFor(async () => (await poolStats(url, '/llm')).active_requests === 1, 10_000, 'slot');
    const late = await fetch(`${url}/llm`, { method: 'POST', headers: { [HEADER]: '100' } });
    expect(late.status).toBe(504);
    expect(await fetch(`${url}/plain`, { method: 'POST' }).then((r) => r.status)).toBe(201);

    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    try {
      const page = await context.newPage();
      await page.goto(`${url}/balancer/ui/`);
      const llm = page.locator('[data-pool="/llm"]');
      const expired = llm.locator('[data-field="deadline_expired"]');
      await waitFor(async () => (await expired.textContent()) === '1', 15_000, 'the counter');
      expect(await expired.isVisible()).toBe(true);
      expect(await llm.locator('[data-field="deadline_unreachable"]').textContent()).toBe('0');
      // The queue timeout's counter is another one, and it counted nothing.
      expect(await llm.locator('[data-field="timed_out"]').textContent()).toBe('0');
      // The summary's 504s count it too.
      expect(await page.locator('[data-field="total-rejected"]').textContent()).toBe('0 / 1');
      const plain = page.locator('[data-pool="/plain"]');
      await waitFor(async () => (await plain.count()) === 1, 15_000, 'the plain card');
      expect(await plain.locator('[data-field="deadline_expired"]').isVisible()).toBe(false);
      await page.screenshot({ path: join(OUT, 'dashboard-deadlines.png'), fullPage: true });
    } finally {
      await context.close();
      hold.latch.open();
      expect((await holder).status).toBe(201);
    }
  });
});
