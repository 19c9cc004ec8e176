import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const npm = (args: string[]): string =>
  execFileSync('npm', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * The published package: built to dist/ with types, the bin and the dashboard inside, and the
 * public API loadable from the CommonJS build by plain Node (no ts-node, no Jest transform).
 */
describe('npm package', () => {
  beforeAll(() => {
    npm(['run', 'build:lib']);
  }, 180_000);

  it('packs dist (JS + types), the CLI, the dashboard build and the docs', () => {
    const [pack] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'])) as Array<{
      files: Array<{ path: string }>;
    }>;
    const files = pack.files.map((f) => f.path);
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'client/dist/index.html',
      'README.md',
      'PARAMS.md',
      'CHANGELOG.md',
      'balancer.yml.example',
      'package.json',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);
    expect(files.some((f) => f.endsWith('.spec.js'))).toBe(false);
  });

  it('exposes the public API from the CommonJS build', () => {
    const script = `
      const api = require(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
      const names = ['BalancerModule', 'Balanced', 'CapacityStore', 'ProbeService', 'AdmissionInterceptor',
        'BenchBalancer', 'loadBalancerConfig', 'BalancerHealthIndicator'];
      const missing = names.filter((n) => api[n] === undefined);
      process.stdout.write(JSON.stringify({ missing, module: typeof api.BalancerModule.forRoot }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' }),
    );
    expect(out).toEqual({ missing: [], module: 'function' });
  });
});
