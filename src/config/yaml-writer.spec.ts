import { parse } from 'yaml';
import { BalancerYamlDocument, camelToSnake } from './yaml-writer';

const SEED = `# balancer settings for the scoring service
storage:
  type: memory   # no redis in dev
latency_threshold_ms: 2000
ui:
  enable: true
  path: /ops/balancer   # custom dashboard path
  username: admin
endpoints:
  # the heavy one
  /predict:
    method: POST
    body: { input: "x" }
  /items/:id:
    path: /items/1
    capacity: 3
custom_key: kept   # not ours, kept anyway
`;

describe('BalancerYamlDocument', () => {
  it('writes capacity and keeps comments, key order and every other key', () => {
    const doc = BalancerYamlDocument.parse(SEED);
    doc.setCapacity('/predict', 12);
    doc.setCapacity('/items/:id', 7);
    const out = doc.toString();
    for (const comment of [
      '# balancer settings for the scoring service',
      '# no redis in dev',
      '# custom dashboard path',
      '# the heavy one',
      '# not ours, kept anyway',
    ]) {
      expect(out).toContain(comment);
    }
    const js = parse(out);
    expect(js.endpoints['/predict']).toEqual({
      method: 'POST',
      body: { input: 'x' },
      capacity: 12,
    });
    expect(js.endpoints['/items/:id']).toEqual({ path: '/items/1', capacity: 7 });
    expect(js.ui.path).toBe('/ops/balancer');
    expect(js.custom_key).toBe('kept');
    expect(Object.keys(js)).toEqual([
      'storage',
      'latency_threshold_ms',
      'ui',
      'endpoints',
      'custom_key',
    ]);
    // Only the capacity lines changed (the yaml package normalizes spaces before comments).
    const norm = (l: string): string => l.replace(/\s+/g, ' ').trim();
    const before = SEED.split('\n').map(norm);
    const changed = out.split('\n').filter((l) => !before.includes(norm(l)));
    expect(changed.map((l) => l.trim())).toEqual(['capacity: 12', 'capacity: 7']);
  });

  it('creates endpoints in an empty document', () => {
    const doc = BalancerYamlDocument.empty();
    doc.setCapacity('/predict', 4);
    expect(parse(doc.toString())).toEqual({ endpoints: { '/predict': { capacity: 4 } } });
  });

  it('merges options with the file spelling and snake_case for new keys', () => {
    const doc = BalancerYamlDocument.parse(SEED);
    doc.mergeOptions({
      latencyThresholdMs: 5000,
      queueTimeout: 90,
      probe: { levelDurationMs: 500 },
      endpoints: { '/predict': { maxQueue: 10, headers: { 'X-Model': 'v2' } } },
    });
    const js = parse(doc.toString());
    expect(js.latency_threshold_ms).toBe(5000);
    expect(js.queue_timeout).toBe(90);
    expect(js.probe).toEqual({ level_duration_ms: 500 });
    expect(js.endpoints['/predict'].max_queue).toBe(10);
    expect(js.endpoints['/predict'].headers).toEqual({ 'X-Model': 'v2' });
    expect(js.latencyThresholdMs).toBeUndefined();
  });

  it('never writes a credential the file did not hold', () => {
    const doc = BalancerYamlDocument.parse(SEED);
    doc.mergeOptions({
      ui: { username: 'admin', password: 's3cret' },
      storage: { url: 'redis://:hunter2@redis:6379/0' },
      endpoints: { '/predict': { headers: { Authorization: 'Bearer abc', 'X-Trace': '1' } } },
    });
    const out = doc.toString();
    expect(out).not.toContain('s3cret');
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('Bearer abc');
    expect(parse(out).endpoints['/predict'].headers).toEqual({ 'X-Trace': '1' });
    expect(doc.skipped).toEqual([
      'ui.password',
      'storage.url',
      'endpoints./predict.headers.Authorization',
    ]);
  });

  it('keeps a password the file already had', () => {
    const doc = BalancerYamlDocument.parse('ui:\n  username: a\n  password: kept-as-is\n');
    doc.mergeOptions({ ui: { password: 'other' } });
    expect(parse(doc.toString()).ui.password).toBe('kept-as-is');
  });

  it('refuses a capacity the loader would reject', () => {
    const doc = BalancerYamlDocument.empty();
    expect(() => doc.setCapacity('/predict', 2.5)).toThrow(
      'endpoints./predict.capacity must be a positive integer (got 2.5)',
    );
    expect(() => doc.setCapacity('/predict', 0)).toThrow(RangeError);
    expect(doc.toString()).not.toContain('capacity');
  });

  it('converts camelCase keys', () => {
    expect(camelToSnake('latencyThresholdMs')).toBe('latency_threshold_ms');
    expect(camelToSnake('path')).toBe('path');
  });
});
