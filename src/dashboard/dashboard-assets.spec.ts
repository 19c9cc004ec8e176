import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientConfig, loadDashboardAssets } from './dashboard-assets';

describe('dashboard assets', () => {
  it('points the client at the API relative to any ui.path', () => {
    const at = (uiPath: string) =>
      new URL(clientConfig(uiPath, 300).statsUrl, `http://h/api${uiPath}/`).pathname;
    expect(at('/balancer/ui')).toBe('/api/balancer/stats');
    expect(at('/ops')).toBe('/api/balancer/stats');
    expect(at('/a/b/c')).toBe('/api/balancer/stats');
  });

  it('loads the build into memory and injects the config as inert JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'balancer-client-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(
      join(dir, 'index.html'),
      '<html><head><title>x</title></head><body></body></html>',
    );
    writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    writeFileSync(join(dir, 'assets', 'index-abc.js.map'), '{}');
    writeFileSync(join(dir, 'favicon.svg'), '<svg/>');
    const config = { ...clientConfig('/x', 60), statsUrl: '</script><script>alert(1)</script>' };
    const assets = loadDashboardAssets(dir, config);
    const html = assets.index!.body.toString();
    expect(html).toContain('<script id="balancer-config" type="application/json">');
    expect(html).not.toContain('</script><script>alert');
    const json = /type="application\/json">([^<]*)<\/script>/.exec(html)![1];
    expect(JSON.parse(json).statsUrl).toBe(config.statsUrl);
    expect([...assets.files.keys()].sort()).toEqual(['assets/index-abc.js', 'favicon.svg']);
    expect(assets.files.get('assets/index-abc.js')).toMatchObject({
      immutable: true,
      type: 'text/javascript; charset=utf-8',
    });
    expect(assets.files.get('favicon.svg')?.immutable).toBe(false);
  });

  it('reports a missing build instead of throwing', () => {
    const assets = loadDashboardAssets(
      join(tmpdir(), 'no-such-balancer-build'),
      clientConfig('/x', 60),
    );
    expect(assets.index).toBeNull();
    expect(assets.files.size).toBe(0);
  });
});
