import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { BalancerModule, ProbeRunner } from '../../src';
import { EXIT_FAILED, EXIT_OK, main, type CliIo } from '../../src/cli/main';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';

const S = 40;
const KNEE = { serviceTimeMs: S, shape: 'knee' as const, slowdown: 10 };
const FAST_FLAGS = [
  '--latency-threshold-ms',
  String(5 * S),
  '--warmup-ms',
  '150',
  '--level-duration-ms',
  '500',
];

const CONFIG = `# Balancer for the scoring service (kept by the CLI)
probe_on_startup: false   # capacities come from the CLI
queue_timeout: 60
ui:
  path: /ops/balancer     # custom dashboard path
  username: admin
  password: from-the-file
endpoints:
  # the model
  /predict:
    method: POST
    body:
      input: ${PREDICT_BODY.input}
  /missing:
    method: GET           # answers 404: cannot be probed
routing_strategy: round_robin   # no effect, kept
`;

function capture(): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    isTty: false,
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
  };
  return io;
}

describe('nestjs-balancer CLI', () => {
  let dir: string;
  let app: ModelApp | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'balancer-cli-'));
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('probe: writes capacity into the YAML, keeps comments and keys, exits 1 when an endpoint fails', async () => {
    app = await startModelApp('express', { capacity: 3, ...KNEE });
    const input = join(dir, 'balancer.yml');
    const output = join(dir, 'out.yml');
    writeFileSync(input, CONFIG);
    const io = capture();
    const code = await main(
      ['probe', '--url', app.url, '--config', input, '--out', output, ...FAST_FLAGS],
      io,
    );

    expect(code).toBe(EXIT_FAILED); // /missing answered 404
    expect(readFileSync(input, 'utf8')).toBe(CONFIG); // --out leaves the input alone
    const text = readFileSync(output, 'utf8');
    for (const comment of [
      '# Balancer for the scoring service',
      '# capacities come from the CLI',
      '# custom dashboard path',
      '# the model',
      '# answers 404',
      '# no effect, kept',
    ]) {
      expect(text).toContain(comment);
    }
    const js = parse(text);
    expect(js.endpoints['/predict'].capacity).toBe(3);
    expect(js.endpoints['/missing'].capacity).toBeUndefined();
    expect(js.ui).toEqual({ path: '/ops/balancer', username: 'admin', password: 'from-the-file' });
    expect(js.routing_strategy).toBe('round_robin');
    expect(Object.keys(js)).toEqual([
      'probe_on_startup',
      'queue_timeout',
      'ui',
      'endpoints',
      'routing_strategy',
    ]);
    // Progress: one line per level; then a final table naming both endpoints.
    expect(io.err).toMatch(/c=\s+1 .*p99 .*err .*rps/);
    expect(io.err).toMatch(/FAILED: .*answered 404/);
    expect(io.out).toMatch(/\/predict\s+3\s+limit/);
    expect(io.out).toMatch(/\/missing\s+-\s+FAILED/);
  });

  it('probe --json --endpoint: machine-readable report, exit 0, file updated in place', async () => {
    app = await startModelApp('fastify', { capacity: 1, ...KNEE });
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, CONFIG);
    const io = capture();
    const code = await main(
      [
        'probe',
        '--url',
        app.url,
        '--config',
        file,
        '--endpoint',
        '/predict',
        '--json',
        '--quiet',
        ...FAST_FLAGS,
      ],
      io,
    );
    expect(code).toBe(EXIT_OK);
    expect(io.err).toBe('');
    const report = JSON.parse(io.out);
    expect(report.ok).toBe(true);
    expect(report.endpoints).toHaveLength(1);
    expect(report.endpoints[0]).toMatchObject({ endpoint: '/predict', ok: true, capacity: 1 });
    expect(report.endpoints[0].result.levels.length).toBeGreaterThan(1);
    expect(parse(readFileSync(file, 'utf8')).endpoints['/predict'].capacity).toBe(1);
  });

  it('export: writes the capacities a running app measured', async () => {
    app = await startModelApp('express', { capacity: 1, ...KNEE }, [
      BalancerModule.forRoot({
        healthEndpoint: false,
        latencyThresholdMs: 5 * S,
        probe: { warmupMs: 150, levelDurationMs: 500 },
        endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
      }),
    ]);
    await app.app.get(ProbeRunner).whenIdle();
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, CONFIG);
    const io = capture();
    const code = await main(['export', '--url', app.url, '--config', file], io);
    expect(code).toBe(EXIT_OK);
    const text = readFileSync(file, 'utf8');
    expect(parse(text).endpoints['/predict'].capacity).toBe(1);
    expect(text).toContain('# the model');
  });

  it('the bin exits non-zero with a clear message when the server is down', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, 'endpoints:\n  /predict:\n    method: POST\n');
    const child = spawn(
      process.execPath,
      [
        require.resolve('ts-node/dist/bin'),
        '--transpile-only',
        'src/cli/main.ts',
        'probe',
        '--url',
        `http://127.0.0.1:${port}`,
        '--config',
        file,
      ],
      { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(EXIT_FAILED);
    expect(stderr).toMatch(/unreachable.*ECONNREFUSED/);
    expect(parse(readFileSync(file, 'utf8')).endpoints['/predict'].capacity).toBeUndefined();
  });
});
