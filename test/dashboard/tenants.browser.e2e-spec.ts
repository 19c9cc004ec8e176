import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startApp, type RunningApp } from '../harness/platforms';
import { Latch, waitFor } from '../harness/wait-for';
import { asTenant, TENANT_POOL, TenantController, tenantApp, tenantStats } from './tenant-fixtures';

const OUT = join(__dirname, '..', '..', 'test-output');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];

/** Tenant keys as an attacker would send them: markup that runs script if parsed as HTML. */
const IMG = '<img src=x onerror="window.__xss=(window.__xss||0)+1;alert(1)">';
const SCRIPT = '<script>window.__xss=(window.__xss||0)+1</script>';
const ENTITY = 'a&amp;b &lt;i&gt;';

/** What the page saw: globals set by injected script, dialogs, CSP reports. */
interface PageState {
  __xss?: number;
  __cspViolations: string[];
}

describe('tenant keys in the dashboard (real browser)', () => {
  let browser: Browser;
  let running: RunningApp | undefined;
  const answers: Array<Promise<number>> = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(() => {
    TenantController.hold = new Latch();
  });
  afterEach(async () => {
    TenantController.hold.open();
    await Promise.allSettled(answers.splice(0));
    await running?.close();
    running = undefined;
  });

  it('renders tenant keys as literal text, and no script of theirs runs', async () => {
    running = await startApp('express', tenantApp());
    const { url } = running;

    // Real requests with the tenant header: the first holds the only slot, the rest queue.
    answers.push(asTenant(url, IMG));
    await waitFor(async () => (await tenantStats(url)).active_requests === 1, 10_000, 'the slot');
    for (const key of [IMG, IMG, SCRIPT, ENTITY]) answers.push(asTenant(url, key));
    await waitFor(async () => (await tenantStats(url)).queued === 4, 10_000, 'four waiters');

    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    try {
      const page = await context.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      // Count attempts too: the page's CSP would block an inline handler that markup injected,
      // and a blocked attempt is still a rendering bug.
      await page.addInitScript(() => {
        const w = globalThis as unknown as PageState & {
          addEventListener(type: string, fn: (e: { violatedDirective: string }) => void): void;
        };
        w.__cspViolations = [];
        w.addEventListener('securitypolicyviolation', (e) =>
          w.__cspViolations.push(e.violatedDirective),
        );
      });
      await page.goto(`${url}/balancer/ui/`);

      const card = page.locator(`[data-pool="${TENANT_POOL}"]`);
      const queuedCells = card.locator('[data-table="tenants-queued"] td.tenant');
      await waitFor(async () => (await queuedCells.count()) === 3, 15_000, 'the tenant table');

      // Nothing was parsed: no element came from a key, no script ran, nothing was attempted.
      expect(await card.locator('img, script').count()).toBe(0);
      expect(await page.locator('body img').count()).toBe(0);
      const seen = await page.evaluate(() => {
        const w = globalThis as unknown as PageState;
        return { xss: w.__xss ?? 0, csp: w.__cspViolations };
      });
      expect(seen).toEqual({ xss: 0, csp: [] });
      expect(dialogs).toEqual([]);

      // Queued: IMG 2, then SCRIPT and ENTITY with 1 each, in the order of the stats.
      const ranking = (await tenantStats(url)).tenants!.queued;
      expect(ranking.map((t) => t.count)).toEqual([2, 1, 1]);
      expect(ranking[0].tenant).toBe(IMG);
      expect(ranking.map((t) => t.tenant).sort()).toEqual([IMG, SCRIPT, ENTITY].sort());
      expect(await queuedCells.allTextContents()).toEqual(ranking.map((t) => t.tenant));
      expect(await queuedCells.first().getAttribute('title')).toBe(IMG);
      const counts = card.locator('[data-table="tenants-queued"] td[data-field="tenant-count"]');
      expect(await counts.allTextContents()).toEqual(['2', '1', '1']);
      expect(
        await card.locator('[data-table="tenants-admitted"] td.tenant').allTextContents(),
      ).toEqual([IMG]);

      // The shedding state of the pool's queue target (a minute: nothing is shed).
      expect(await card.locator('[data-field="shedding"]').textContent()).toBe('Not shedding');
      expect(await card.locator('[data-field="shed"]').textContent()).toBe('0');
      await page.screenshot({ path: join(OUT, 'dashboard-tenants.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });
});
