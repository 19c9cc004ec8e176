import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDist } from '../harness/dist';

const ROOT = join(__dirname, '..', '..');
const npm = (args: string[]): string =>
  execFileSync('npm', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * The published package: built to dist/ with types, the bin and the dashboard inside, and the
 * public API loadable from the CommonJS build by plain Node (no ts-node, no Jest transform).
 */
describe('npm package', () => {
  beforeAll(() => {
    // Built by `.ci/run` just before `npm test` (or by a previous run): built again only when
    // src/ changed since.
    ensureDist();
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
    // Source maps would point at src/, which is not shipped: none at all.
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  });

  describe('types for an app without prom-client', () => {
    let dir: string;
    beforeAll(() => {
      // The packed package in a project whose node_modules has everything but prom-client.
      dir = mkdtempSync(join(tmpdir(), 'balancer-consumer-'));
      const [pack] = JSON.parse(
        npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir]),
      ) as Array<{ filename: string }>;
      const modules = join(dir, 'node_modules');
      const target = join(modules, 'nestjs-balancer');
      mkdirSync(target, { recursive: true });
      execFileSync('tar', ['xzf', join(dir, pack.filename), '-C', target, '--strip-components=1']);
      const scoped = (name: string): string[] =>
        name.startsWith('@')
          ? readdirSync(join(ROOT, 'node_modules', name)).map((n) => `${name}/${n}`)
          : [name];
      for (const name of readdirSync(join(ROOT, 'node_modules')).flatMap(scoped)) {
        if (name === 'prom-client' || name.startsWith('.')) continue;
        mkdirSync(join(modules, name, '..'), { recursive: true });
        symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
      }
    }, 180_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** Type-check `code` as the consumer's only file, library types included (no skipLibCheck). */
    const compile = (code: string): { status: number | null; out: string } => {
      writeFileSync(join(dir, 'main.ts'), code);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            module: 'commonjs',
            target: 'ES2022',
            experimentalDecorators: true,
            emitDecoratorMetadata: true,
            types: ['node'],
          },
          files: ['main.ts'],
        }),
      );
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };

    it('compile against the packed .d.ts files', () => {
      const { status, out } = compile(`
        import { Module } from '@nestjs/common';
        import { BalancerMetrics, BalancerModule, type MetricsRegistry } from 'nestjs-balancer';
        @Module({ imports: [BalancerModule.forRoot({ metrics: { prefix: 'app_' } })] })
        export class AppModule {}
        export function registryOf(m: BalancerMetrics): MetricsRegistry | null {
          return m.registry;
        }
      `);
      expect(out).not.toContain('prom-client');
      expect({ status, out }).toEqual({ status: 0, out: '' });
    });

    it('really has no prom-client to resolve (the check above can fail)', () => {
      const { status, out } = compile(`import { Registry } from 'prom-client';\nnew Registry();\n`);
      expect(status).not.toBe(0);
      expect(out).toContain("Cannot find module 'prom-client'");
    });
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
