import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { BalancerModule, ProbeRunner } from '../../src';
import { describeFetchError } from '../../src/cli/cli-args';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, main, type CliIo } from '../../src/cli/main';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';
import { spawnNode } from '../harness/child-build';

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

/** Runs the CLI's entry as its bin does (this run's compiled src/, plain node). */
async function runBin(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnNode('src/cli/main.ts', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
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
    // The capacity the CLI measured and printed is the one written (3 on a quiet machine; the
    // probe's accuracy is the timing pass's test/probe/probe suite, not this one's).
    const printed = /\/predict\s+(\d+)\s+limit/.exec(io.out);
    expect(printed).not.toBeNull();
    const measured = Number(printed![1]);
    expect(measured).toBeGreaterThanOrEqual(1);
    expect(measured).toBeLessThanOrEqual(3);
    expect(js.endpoints['/predict'].capacity).toBe(measured);
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
    // 100 ms calls (limit 500 ms, 1000 ms at 2 in flight): an event-loop stall on a busy
    // machine does not fail level 1, so the capacity is measured ('probe') and exported.
    app = await startModelApp('express', { ...KNEE, capacity: 1, serviceTimeMs: 100 }, [
      BalancerModule.forRoot({
        healthEndpoint: false,
        latencyThresholdMs: 500,
        probe: { warmupMs: 150, levelDurationMs: 500 },
        endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY } },
      }),
    ]);
    await app.app.get(ProbeRunner).whenIdle();
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, CONFIG);
    const io = capture();
    const code = await main(['export', '--url', app.url, '--config', file], io);
    expect({ code, err: io.err }).toEqual({ code: EXIT_OK, err: '' });
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
    const { code, stderr } = await runBin([
      'probe',
      '--url',
      `http://127.0.0.1:${port}`,
      '--config',
      file,
    ]);
    expect(code).toBe(EXIT_FAILED);
    expect(stderr).toMatch(/unreachable.*ECONNREFUSED/);
    expect(parse(readFileSync(file, 'utf8')).endpoints['/predict'].capacity).toBeUndefined();
  });

  it('--help prints the help of the CLI and of each command, exit 0', async () => {
    for (const [argv, title] of [
      [['--help'], 'nestjs-balancer <command>'],
      [['-h'], 'nestjs-balancer <command>'],
      [['probe', '--help'], 'nestjs-balancer probe --url'],
      [['probe', '--url', 'x', '-h'], 'nestjs-balancer probe --url'],
      [['export', '--help'], 'nestjs-balancer export --url'],
      [['export', '--bogus', '--help'], 'nestjs-balancer export --url'],
    ] as const) {
      const io = capture();
      expect([argv, await main([...argv], io)]).toEqual([argv, EXIT_OK]);
      expect(io.out.startsWith(title)).toBe(true);
      expect(io.err).toBe('');
    }
    const io = capture();
    await main(['probe', '--help'], io);
    expect(io.out).toContain('--max-concurrency <n>');
    expect(io.out).not.toContain('--stats-path');
    // No command at all is still a usage error.
    expect(await main([], capture())).toBe(EXIT_USAGE);
  });

  it('the top-level help lists -h/--help and -v/--version under Options, and -v prints the version', async () => {
    const io = capture();
    expect(await main(['--help'], io)).toBe(EXIT_OK);
    const options = io.out.slice(io.out.indexOf('\nOptions:\n'));
    expect(options).toMatch(
      /^\nOptions:\n {2}-h, --help +this help\n {2}-v, --version +print the version\n/,
    );
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['-v', '--version']) {
      const v = capture();
      expect([flag, await main([flag], v)]).toEqual([flag, EXIT_OK]);
      expect(v.out).toBe(`${pkg.version}\n`);
    }
  });

  it('the bin itself prints the probe help and exits 0 (probe --help)', async () => {
    const { code, stdout, stderr } = await runBin(['probe', '--help']);
    expect({ code, stderr }).toEqual({ code: EXIT_OK, stderr: '' });
    expect(stdout.startsWith('nestjs-balancer probe --url')).toBe(true);
    expect(stdout).toContain('--max-concurrency <n>');
  });

  it('numeric flags are validated like the options; the error names the flag, the file is untouched', async () => {
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, CONFIG);
    const cases: Array<[string[], RegExp]> = [
      [['--max-concurrency', '2.5'], /--max-concurrency must be an integer number/],
      [['--max-concurrency', '0'], /--max-concurrency must not be less than 1/],
      [['--error-threshold', '2'], /--error-threshold must not be greater than 1/],
      [
        ['--latency-threshold-ms', '12ms'],
        /--latency-threshold-ms must be a number \(got "12ms"\)/,
      ],
      [['--warmup-ms', ''], /--warmup-ms must be a number/],
      [['--level-duration-ms', '10'], /--level-duration-ms must not be less than 50/],
      [['--max-duration-ms', '500'], /--max-duration-ms must not be less than 1000/],
    ];
    for (const [flags, message] of cases) {
      const io = capture();
      // The URL is never contacted: validation comes first.
      const code = await main(
        ['probe', '--url', 'http://127.0.0.1:9', '--config', file, ...flags],
        io,
      );
      expect([flags, code]).toEqual([flags, EXIT_USAGE]);
      expect(io.err).toMatch(message);
      expect(io.err).toContain('nestjs-balancer probe --url'); // the command's usage follows
    }
    expect(readFileSync(file, 'utf8')).toBe(CONFIG);
  });

  describe('export against a server that cannot answer', () => {
    let server: Server | undefined;
    const sockets = new Set<Socket>();
    afterEach(async () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      await new Promise((r) => (server ? server.close(r) : r(undefined)));
      server = undefined;
    });
    const listen = async (handler: RequestListener): Promise<string> => {
      server = createHttpServer(handler);
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    };

    it('names ECONNREFUSED and the address when nothing listens', async () => {
      const port = await freePort();
      const file = join(dir, 'balancer.yml');
      writeFileSync(file, CONFIG);
      const io = capture();
      const code = await main(
        ['export', '--url', `http://127.0.0.1:${port}`, '--config', file],
        io,
      );
      expect(code).toBe(EXIT_FAILED);
      expect(io.err).toContain(
        `cannot reach http://127.0.0.1:${port}/balancer/stats: ECONNREFUSED at 127.0.0.1:${port}`,
      );
      expect(readFileSync(file, 'utf8')).toBe(CONFIG);
    });

    it('gives up after --timeout when the server never answers', async () => {
      const url = await listen(() => undefined); // accepts, never responds
      const file = join(dir, 'balancer.yml');
      const io = capture();
      const code = await main(['export', '--url', url, '--config', file, '--timeout', '0.3'], io);
      expect(code).toBe(EXIT_FAILED);
      expect(io.err).toContain(
        `${url}/balancer/stats: no answer within 0.3 s (raise it with --timeout)`,
      );
      for (const bad of ['0', '-1', 'soon']) {
        const e = capture();
        expect(await main(['export', '--url', url, '--config', file, `--timeout=${bad}`], e)).toBe(
          EXIT_USAGE,
        );
        expect(e.err).toMatch(/--timeout must be a number/);
      }
    });

    it("export reads the stats under the config's route_prefix unless --stats-path is given", async () => {
      const asked: string[] = [];
      const url = await listen((req, res) => {
        asked.push(req.url ?? '');
        if (req.url !== '/ops/lb/stats' && req.url !== '/custom/stats') {
          res.statusCode = 404;
          res.end();
          return;
        }
        res.setHeader('content-type', 'application/json');
        const capacity = req.url === '/custom/stats' ? 7 : 3;
        res.end(
          JSON.stringify({ endpoints: { '/predict': { capacity, capacity_source: 'probe' } } }),
        );
      });
      const file = join(dir, 'balancer.yml');
      writeFileSync(file, `route_prefix: /ops/lb/\n${CONFIG}`);
      expect(await main(['export', '--url', url, '--config', file], capture())).toBe(EXIT_OK);
      expect(parse(readFileSync(file, 'utf8')).endpoints['/predict'].capacity).toBe(3);
      const io = capture();
      expect(
        await main(['export', '--url', url, '--config', file, '--stats-path', '/custom/stats'], io),
      ).toBe(EXIT_OK);
      expect(parse(readFileSync(file, 'utf8')).endpoints['/predict'].capacity).toBe(7);
      // Without a file (or a route_prefix in it), the default route.
      const fresh = join(dir, 'fresh.yml');
      expect(await main(['export', '--url', url, '--config', fresh], capture())).toBe(EXIT_FAILED);
      expect(asked).toEqual(['/ops/lb/stats', '/custom/stats', '/balancer/stats']);
    });

    it('export stops on a route_prefix it cannot use, before asking the server', async () => {
      const file = join(dir, 'balancer.yml');
      writeFileSync(file, `route_prefix: 12\n${CONFIG}`);
      const io = capture();
      // Port 9 (discard) is never contacted: the file is read first.
      expect(await main(['export', '--url', 'http://127.0.0.1:9', '--config', file], io)).toBe(
        EXIT_USAGE,
      );
      expect(io.err).toContain('route_prefix must be a non-empty path (got 12)');
      expect(readFileSync(file, 'utf8')).toBe(`route_prefix: 12\n${CONFIG}`);
    });

    it('names the cause of a failed request when the cause has no code', () => {
      const err = new TypeError('fetch failed', {
        cause: new Error('invalid onRequestStart method'),
      });
      expect(describeFetchError(err, 'http://h/balancer/stats', 10)).toBe(
        'cannot reach http://h/balancer/stats: invalid onRequestStart method',
      );
      // Without a cause, the error's own message.
      expect(describeFetchError(new Error('boom'), 'http://h/s', 10)).toBe(
        'cannot reach http://h/s: boom',
      );
    });

    it('never writes a capacity the options would reject', async () => {
      const url = await listen((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            endpoints: {
              '/predict': { capacity: 2.5, capacity_source: 'probe' },
              '/other': { capacity: 4, capacity_source: 'probe' },
            },
          }),
        );
      });
      const file = join(dir, 'balancer.yml');
      writeFileSync(file, CONFIG);
      const io = capture();
      expect(await main(['export', '--url', url, '--config', file], io)).toBe(EXIT_OK);
      expect(io.err).toContain('skipped /predict: capacity 2.5 is not a positive integer');
      const js = parse(readFileSync(file, 'utf8'));
      expect(js.endpoints['/predict'].capacity).toBeUndefined();
      expect(js.endpoints['/other'].capacity).toBe(4);
    });
  });
});

function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}
