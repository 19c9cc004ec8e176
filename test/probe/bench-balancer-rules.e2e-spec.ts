import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { BenchBalancer } from '../../src';
import { PREDICT_BODY, startModelApp, type ModelApp } from '../fixtures/model-app';

/**
 * The CLI and `BenchBalancer` probe by the same rules as the startup probe: without
 * `latency_threshold_ms` the limit follows the endpoint's own unloaded latency and slow levels
 * are paced by latency; a seed that sets `latency_threshold_ms` keeps it as an absolute bound.
 */
describe('BenchBalancer probes by the startup probe rules', () => {
  let dir: string;
  let app: ModelApp | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-rules-'));
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function seed(extra: string): string {
    const file = join(dir, 'balancer.yml');
    writeFileSync(
      file,
      `${extra}endpoints:\n  /predict:\n    method: POST\n    body: { input: ${JSON.stringify(PREDICT_BODY.input)} }\n`,
    );
    return file;
  }

  it('a slow endpoint without latency_threshold_ms: relative limit, levels paced by latency', async () => {
    // 700 ms calls, 2 at full speed, x4 slower above: far over the old 2000 ms default limit.
    app = await startModelApp('express', { capacity: 2, serviceTimeMs: 700, shape: 'knee' });
    const file = seed('probe:\n  max_duration_ms: 60000\n');
    const report = await new BenchBalancer({ baseUrl: app.url, silent: true }).run(file);

    expect(report.ok).toBe(true);
    const result = report.endpoints[0].result!;
    expect(result.maxConcurrency).toBe(2);
    expect(result.thresholds.latencyRule).toBe('relative');
    expect(result.thresholds.latencyThresholdMs).toBeGreaterThanOrEqual(4 * 700);
    expect(result.levels.every((l) => l.slow)).toBe(true);
    expect(parse(readFileSync(file, 'utf8')).endpoints['/predict'].capacity).toBe(2);
  }, 60_000);

  it('a seed with latency_threshold_ms keeps it as an absolute bound', async () => {
    app = await startModelApp('express', {
      capacity: 3,
      serviceTimeMs: 40,
      shape: 'knee',
      slowdown: 10,
    });
    const file = seed(
      'latency_threshold_ms: 200\nprobe:\n  warmup_ms: 150\n  level_duration_ms: 500\n',
    );
    const report = await new BenchBalancer({ baseUrl: app.url, silent: true }).run(file);

    expect(report.ok).toBe(true);
    const result = report.endpoints[0].result!;
    // 3 on a quiet machine; what this checks is the rule, not the accuracy (the timing pass's
    // test/probe/probe suite): a 40 ms knee measured against the absolute 200 ms bound.
    expect(result.maxConcurrency).toBeGreaterThanOrEqual(1);
    expect(result.maxConcurrency).toBeLessThanOrEqual(3);
    expect(result.thresholds).toMatchObject({ latencyRule: 'absolute', latencyThresholdMs: 200 });
    expect(result.levels.every((l) => l.limitMs === 200 && !l.slow)).toBe(true);
  }, 60_000);
});
