import { Controller, Module, Post } from '@nestjs/common';
import { chromium, type Browser } from 'playwright-core';
import { Balanced, BalancerModule } from '../../src';
import { startApp, type RunningApp } from '../harness/platforms';
import { Latch, waitFor } from '../harness/wait-for';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];

@Controller()
class TokensController {
  static hold = new Latch();

  @Post('generate')
  @Balanced({ capacity: 10, costHeader: 'x-tokens' })
  async generate(): Promise<{ ok: true }> {
    await TokensController.hold.promise;
    return { ok: true };
  }
}

@Module({
  imports: [BalancerModule.forRoot({ probeOnStartup: false, healthEndpoint: false })],
  controllers: [TokensController],
})
class TokensAppModule {}

interface Units {
  active: number;
  queued: number;
}

async function units(url: string): Promise<Units | undefined> {
  const body = (await (await fetch(`${url}/balancer/stats`)).json()) as {
    endpoints: Record<string, { units?: Units }>;
  };
  return body.endpoints['/generate'].units;
}

describe('units of a costed pool in the dashboard (real browser)', () => {
  let browser: Browser;
  let running: RunningApp | undefined;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    TokensController.hold.open();
    await running?.close();
    await browser?.close();
  });

  it('shows the units held and waiting, and the bar in units', async () => {
    running = await startApp('express', TokensAppModule);
    const { url } = running;
    const send = (tokens: number): Promise<Response> =>
      fetch(`${url}/generate`, { method: 'POST', headers: { 'x-tokens': String(tokens) } });
    const answers = [send(6)];
    await waitFor(async () => (await units(url))?.active === 6, 10_000, '6 units held');
    answers.push(send(7));
    await waitFor(async () => (await units(url))?.queued === 7, 10_000, '7 units waiting');

    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    try {
      const page = await context.newPage();
      await page.goto(`${url}/balancer/ui/`);
      const card = page.locator('[data-pool="/generate"]');
      const activeSub = card.locator('[data-field="active"] ~ .metric-sub');
      await waitFor(
        async () => (await activeSub.textContent()) === '6 units of 10',
        15_000,
        'the units line',
      );
      expect(await card.locator('[data-field="active"]').textContent()).toBe('1');
      expect(await card.locator('[data-field="queued"] ~ .metric-sub').textContent()).toBe(
        '7 units waiting',
      );
      expect(await card.locator('[data-field="available"]').textContent()).toBe('4');
      expect(await card.locator('.util .bar').getAttribute('aria-valuenow')).toBe('60');
    } finally {
      await context.close();
    }
    TokensController.hold.open();
    expect((await Promise.all(answers)).map((r) => r.status)).toEqual([201, 201]);
  });
});
