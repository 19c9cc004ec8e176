import { PLATFORMS, startApp, type RunningApp } from '../harness/platforms';
import { waitFor } from '../harness/wait-for';
import { appWith, assetUrls, asyncAppWith, basic, injectedConfig } from './dashboard-fixtures';

const USER = 'jürgen';
const PASS = 'pässwörd ✓ 密码';
const AUTH = basic(USER, PASS);

describe.each(PLATFORMS)('dashboard on %s', (platform) => {
  let running: RunningApp | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('serves the dashboard and its assets at the default ui.path, next to the app routes', async () => {
    running = await startApp(platform, appWith({}));
    const { url } = running;

    const bare = await fetch(`${url}/balancer/ui?x=1`, { redirect: 'manual' });
    expect(bare.status).toBe(302);
    expect(bare.headers.get('location')).toBe('ui/?x=1');

    const page = await fetch(`${url}/balancer/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    const config = injectedConfig(html);
    expect(new URL(config.statsUrl, `${url}/balancer/ui/`).pathname).toBe('/balancer/stats');
    expect(new URL(config.historyUrl, `${url}/balancer/ui/`).pathname).toBe('/balancer/history');

    const assets = assetUrls(html);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const a of assets) {
      const res = await fetch(`${url}/balancer/ui/${a}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(
        a.endsWith('.js') ? /^text\/javascript/ : /^text\/css/,
      );
      expect(res.headers.get('cache-control')).toContain('immutable');
      const etag = res.headers.get('etag') as string;
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
      const again = await fetch(`${url}/balancer/ui/${a}`, { headers: { 'if-none-match': etag } });
      expect(again.status).toBe(304);
    }
    expect((await fetch(`${url}/balancer/ui/index.html`)).status).toBe(200);
    expect((await fetch(`${url}/balancer/ui/favicon.svg`)).headers.get('content-type')).toBe(
      'image/svg+xml',
    );

    // Only files of the build are answered; everything else is the app's.
    expect((await fetch(`${url}/balancer/ui/assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${url}/balancer/ui/assets%2F..%2F..%2Fpackage.json`)).status).toBe(404);
    const badUri = (await fetch(`${url}/balancer/ui/assets/%E0%A4%A`)).status;
    expect(badUri >= 400 && badUri < 500).toBe(true); // the router's own 400/404, never a 500
    expect(await (await fetch(`${url}/other`)).json()).toEqual({ other: true });
    expect((await fetch(`${url}/balancer/stats`)).status).toBe(200);
  });

  it('protects a custom ui.path, its assets, stats, history and metrics with Basic auth', async () => {
    running = await startApp(
      platform,
      appWith({ ui: { path: '/ops/dash/', username: USER, password: PASS } }),
    );
    const { url } = running;
    const page = await fetch(`${url}/ops/dash/`, { headers: { authorization: AUTH } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(injectedConfig(html).statsUrl).toBe('../../balancer/stats');
    const js = assetUrls(html).find((a) => a.endsWith('.js')) as string;

    const protectedUrls = [
      '/ops/dash',
      '/ops/dash/',
      `/ops/dash/${js}`,
      '/balancer/stats',
      '/balancer/history',
      '/balancer/metrics',
    ];
    const malformed = [
      undefined,
      'Basic',
      'Basic ',
      'Basic !!!!',
      'Bearer abc',
      'Basic ' + Buffer.from('no-colon').toString('base64'),
      'Basic ' + Buffer.from(`${USER}:wrong`).toString('base64'),
      'Basic ' + Buffer.from(`${USER}:${PASS}`, 'latin1').toString('base64'), // wrong encoding
      basic(USER.toUpperCase(), PASS),
      `Basic ${'A'.repeat(8000)}`,
      'Basic \u00fc\u00e9', // non-ASCII bytes in the header
      `${AUTH}, ${AUTH}`,
    ];
    for (const path of protectedUrls) {
      for (const header of malformed) {
        const res = await fetch(`${url}${path}`, {
          redirect: 'manual',
          headers: header === undefined ? {} : { authorization: header },
        });
        expect({ path, header: header?.slice(0, 40), status: res.status }).toEqual({
          path,
          header: header?.slice(0, 40),
          status: 401,
        });
        expect(res.headers.get('www-authenticate')).toBe(
          'Basic realm="nestjs-balancer", charset="UTF-8"',
        );
        await res.arrayBuffer();
      }
      const ok = await fetch(`${url}${path}`, {
        redirect: 'manual',
        headers: { authorization: AUTH },
      });
      expect([200, 302]).toContain(ok.status);
      await ok.arrayBuffer();
    }
    expect(
      (
        await fetch(`${url}/ops/dash`, { redirect: 'manual', headers: { authorization: AUTH } })
      ).headers.get('location'),
    ).toBe('dash/');
    // Not mounted at the default path any more, and the app's routes stay public.
    expect((await fetch(`${url}/balancer/ui/`, { headers: { authorization: AUTH } })).status).toBe(
      404,
    );
    expect((await fetch(`${url}/other`)).status).toBe(200);
  });

  it('follows the global prefix and works with forRootAsync', async () => {
    running = await startApp(platform, asyncAppWith({ ui: { path: '/console' } }), {
      setup: (app) => app.setGlobalPrefix('api'),
    });
    const { url } = running;
    const page = await fetch(`${url}/api/console/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const stats = new URL(injectedConfig(html).statsUrl, `${url}/api/console/`);
    expect(stats.pathname).toBe('/api/balancer/stats');
    const body = (await (await fetch(stats)).json()) as { endpoints: Record<string, unknown> };
    expect(Object.keys(body.endpoints)).toEqual(['/api/slow']);
    const js = assetUrls(html).find((a) => a.endsWith('.js')) as string;
    expect((await fetch(`${url}/api/console/${js}`)).status).toBe(200);
    expect((await fetch(`${url}/console/`)).status).toBe(404);
  });

  it('removes the dashboard and its history with ui.enable: false', async () => {
    running = await startApp(platform, appWith({ ui: { enable: false } }));
    expect((await fetch(`${running.url}/balancer/ui/`)).status).toBe(404);
    expect((await fetch(`${running.url}/balancer/history`)).status).toBe(404);
    expect((await fetch(`${running.url}/balancer/stats`)).status).toBe(200);
  });

  it('keeps one-second history samples so a new page shows the past at once', async () => {
    running = await startApp(platform, appWith({}));
    const { url } = running;
    await fetch(`${url}/slow`, { method: 'POST' });
    type H = {
      interval_s: number;
      seconds: number;
      pools: Record<string, Record<string, number[]>>;
    };
    let h!: H;
    await waitFor(
      async () => {
        h = (await (await fetch(`${url}/balancer/history`)).json()) as H;
        return (h.pools['/slow']?.t.length ?? 0) >= 3;
      },
      15_000,
      'three history samples',
    );
    expect(h.interval_s).toBe(1);
    expect(h.seconds).toBe(300);
    const p = h.pools['/slow'];
    for (const col of ['active', 'queued', 'capacity', 'admitted', 'rejected', 'timed_out']) {
      expect(p[col]).toHaveLength(p.t.length);
    }
    expect(p.capacity.every((c) => c === 2)).toBe(true);
    expect(p.admitted[p.admitted.length - 1]).toBe(1);
    expect(p.t).toEqual([...p.t].sort((a, b) => a - b));
    const since = p.t[p.t.length - 2];
    const newer = (await (await fetch(`${url}/balancer/history?since=${since}`)).json()) as H;
    expect(newer.pools['/slow'].t.every((t) => t > since)).toBe(true);
    expect(newer.pools['/slow'].t.length).toBeGreaterThanOrEqual(1);
  });
});
