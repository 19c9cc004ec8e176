import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { BalancerConfigError, BenchBalancer } from '../../src';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';

const S = 40;

describe('BenchBalancer', () => {
  let dir: string;
  let app: ModelApp | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-balancer-'));
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('run(): probes the given endpoints and writes the YAML without passwords it was not given in the file', async () => {
    app = await startModelApp('fastify', {
      capacity: 1,
      serviceTimeMs: S,
      shape: 'knee',
      slowdown: 10,
    });
    const file = join(dir, 'balancer.yml');
    const events: string[] = [];
    const report = await new BenchBalancer({
      baseUrl: app.url,
      latencyThresholdMs: 5 * S,
      queueTimeout: 90,
      probe: { warmupMs: 150, levelDurationMs: 500 },
      ui: { path: '/ops', username: 'admin', password: 'not-in-the-file' },
      endpoints: {
        '/predict': {
          method: 'POST',
          body: PREDICT_BODY,
          headers: { authorization: 'Bearer t0ken' },
        },
      },
      silent: true,
      onProgress: (e) => events.push(e.type),
    }).run(file);

    expect(report.ok).toBe(true);
    expect(report.endpoints[0]).toMatchObject({ endpoint: '/predict', capacity: 1 });
    expect(events[0]).toBe('start');
    expect(events).toContain('level');
    expect(events[events.length - 1]).toBe('done');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('not-in-the-file');
    expect(text).not.toContain('t0ken');
    expect(report.skippedCredentials).toEqual([
      'ui.password',
      'endpoints./predict.headers.authorization',
    ]);
    const js = parse(text);
    expect(js).toMatchObject({
      latency_threshold_ms: 5 * S,
      queue_timeout: 90,
      probe: { warmup_ms: 150, level_duration_ms: 500 },
      ui: { path: '/ops', username: 'admin' },
      endpoints: { '/predict': { method: 'POST', body: PREDICT_BODY, capacity: 1 } },
    });
  });

  it('toYaml(): writes the options without probing, into an existing file', () => {
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, '# mine\nendpoints:\n  /predict:\n    method: POST   # keep\n');
    new BenchBalancer({
      baseUrl: 'http://127.0.0.1:1',
      endpoints: { '/predict': { capacity: 7 } },
    }).toYaml(file);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# mine');
    expect(text).toContain('# keep');
    expect(parse(text)).toEqual({ endpoints: { '/predict': { method: 'POST', capacity: 7 } } });
  });

  it('rejects an invalid file with the line of the problem, before sending anything', async () => {
    const file = join(dir, 'balancer.yml');
    writeFileSync(file, 'endpoints:\n  /predict:\n    capacity: -2\n');
    const err = await new BenchBalancer({ baseUrl: 'http://127.0.0.1:1' })
      .run(file)
      .catch((e) => e);
    expect(err).toBeInstanceOf(BalancerConfigError);
    expect(err.message).toMatch(/capacity \(line 3\)/);
  });
});
