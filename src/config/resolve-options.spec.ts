import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BalancerConfigError } from './balancer-config.error';
import { loadBalancerConfig } from './load-balancer-config';
import { DEFAULTS, resolveBalancerOptions } from './resolve-options';

const dir = mkdtempSync(join(tmpdir(), 'balancer-config-'));
function yamlFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BalancerConfigError);
    return (err as BalancerConfigError).problems;
  }
  throw new Error('expected a BalancerConfigError');
}

describe('resolveBalancerOptions', () => {
  it('applies the seed defaults to empty options', () => {
    const o = resolveBalancerOptions({});
    expect(o.storage.type).toBe('memory');
    expect(o.healthEndpoint).toBe('/health');
    expect(o.healthCheckInterval).toBe(10);
    expect(o.queueTimeout).toBe(30);
    expect(o.probeOnStartup).toBe(true);
    expect(o.forceReprobe).toBe(false);
    expect(o.errorThreshold).toBe(0.05);
    // No absolute latency limit: the probe's limit is relative to the endpoint itself.
    expect(o.latencyThresholdMs).toBeUndefined();
    expect(o.probe).toMatchObject({
      latencyFactor: 4,
      latencyFloorMs: 1000,
      maxDurationMs: 120_000,
      slowLatencyMs: 500,
    });
    expect(o.probe.requestTimeoutMs).toBeUndefined();
    expect(o.ui).toMatchObject({ enable: true, path: '/balancer/ui' });
    expect(o.maxQueue).toBe(DEFAULTS.maxQueue);
  });

  it('a seed that sets latency_threshold_ms keeps it absolute, with the 5x request timeout', () => {
    const o = resolveBalancerOptions(join(__dirname, '../../test/fixtures/seed-balancer.yml'));
    expect(o.latencyThresholdMs).toBe(2000);
    expect(o.probe.requestTimeoutMs).toBe(10_000);
  });

  it('reads the slow-endpoint probe keys from YAML and names a bad one', () => {
    const o = resolveBalancerOptions(
      yamlFile(
        'slow.yml',
        'probe:\n  latency_factor: 3\n  latency_floor_ms: 500\n  max_duration_ms: 60000\n  slow_latency_ms: 800\n',
      ),
    );
    expect(o.probe).toMatchObject({
      latencyFactor: 3,
      latencyFloorMs: 500,
      maxDurationMs: 60_000,
      slowLatencyMs: 800,
    });
    const problems = problemsOf(() =>
      resolveBalancerOptions(yamlFile('bad.yml', 'probe:\n  max_duration_ms: 10\n')),
    );
    expect(problems.join('\n')).toMatch(/probe\.max_duration_ms.*must not be less than 1000/);
  });

  it("takes admission 'guard' (default) or 'interceptor', from options or YAML", () => {
    expect(resolveBalancerOptions({}).admission).toBe('guard');
    expect(resolveBalancerOptions({ admission: 'interceptor' }).admission).toBe('interceptor');
    const path = yamlFile('admission.yml', 'admission: interceptor\n');
    expect(resolveBalancerOptions(path).admission).toBe('interceptor');
    const problems = problemsOf(() =>
      resolveBalancerOptions({ admission: 'middleware' as unknown as 'guard' }),
    );
    expect(problems.join('\n')).toContain('admission');
  });

  it('reads storage.restart_hold from YAML (seconds) and names it when it is out of range', () => {
    const path = yamlFile(
      'hold.yml',
      'storage:\n  type: redis\n  url: redis://localhost:6379\n  restart_hold: 0\n',
    );
    expect(resolveBalancerOptions(path).storage.restartHold).toBe(0);
    expect(resolveBalancerOptions({}).storage.restartHold).toBeUndefined();
    const problems = problemsOf(() =>
      resolveBalancerOptions({ storage: { type: 'redis', url: 'redis://x:1', restartHold: -1 } }),
    );
    expect(problems.join('\n')).toContain('restartHold');
  });

  it('takes earlyAdmission true (default), false (also from YAML) or a function, and names it when bad', () => {
    expect(resolveBalancerOptions({}).earlyAdmission).toBe(true);
    const check = (): boolean => true;
    expect(resolveBalancerOptions({ earlyAdmission: check }).earlyAdmission).toBe(check);
    const path = yamlFile('early.yml', 'early_admission: false\n');
    expect(resolveBalancerOptions(path).earlyAdmission).toBe(false);
    const problems = problemsOf(() =>
      resolveBalancerOptions({ earlyAdmission: 'yes' as unknown as boolean }),
    );
    expect(problems).toEqual([
      expect.stringContaining('earlyAdmission must be true, false or a function'),
    ]);
  });

  it("loads the seed's example balancer.yml unchanged", () => {
    const o = resolveBalancerOptions(join(__dirname, '../../test/fixtures/seed-balancer.yml'));
    expect(o.storage).toMatchObject({
      type: 'redis',
      url: 'redis://localhost:6379',
      keyPrefix: 'balancer',
    });
    expect(o.routingStrategy).toBe('round-robin');
    expect(o.ui).toMatchObject({
      enable: true,
      path: '/balancer/ui',
      username: 'admin',
      password: 'secret',
    });
    expect(o.endpoints['/predict']).toMatchObject({
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer your-token' },
      body: { input: 'sample input' },
    });
    expect(o.endpoints['/embed'].body).toEqual({ texts: ['hello'] });
  });

  it('loads the shipped balancer.yml.example', () => {
    const o = resolveBalancerOptions(join(__dirname, '../../balancer.yml.example'));
    expect(o.endpoints['/embed']).toMatchObject({ capacity: 10, queueTimeout: 120, maxQueue: 200 });
    expect(o.probe.levelDurationMs).toBe(1000);
    expect(o.storage.leaseTtl).toBe(5);
    expect(o.bodyLingerMs).toBe(2000);
    expect(o.probe.lockTtlMs).toBe(15_000);
  });

  it('keeps user data keys (headers, body) exactly as written', () => {
    const path = yamlFile(
      'data.yml',
      'endpoints:\n  /x:\n    headers:\n      X_Api_Key: k\n    body:\n      some_field: 1\n',
    );
    const o = resolveBalancerOptions(path);
    expect(o.endpoints['/x'].headers).toEqual({ X_Api_Key: 'k' });
    expect(o.endpoints['/x'].body).toEqual({ some_field: 1 });
  });

  it('names every offending YAML key with its line, in the file spelling', () => {
    const path = yamlFile(
      'bad.yml',
      [
        'queue_timeout: -1', // line 1
        'ui:',
        '  enable: true',
        '  pasword: oops', // line 4: typo
        'endpoints:',
        '  /predict:',
        '    capacity: 0', // line 7
        '    method: FETCH', // line 8
        'latency_threshold_ms: fast', // line 9
      ].join('\n'),
    );
    const problems = problemsOf(() => resolveBalancerOptions(path));
    expect(problems).toEqual(
      expect.arrayContaining([
        'queue_timeout (line 1) must not be less than 0',
        'ui.pasword (line 4): unknown option',
        'endpoints./predict.capacity (line 7) must be a positive integer',
        expect.stringMatching(/^endpoints\.\/predict\.method \(line 8\) must be one of/),
        expect.stringMatching(/^latency_threshold_ms \(line 9\) must be a number/),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it('names the line of malformed YAML', () => {
    const path = yamlFile('broken.yml', 'storage:\n  type: memory\nendpoints:\n  - /a\n  b: 2\n');
    const problems = problemsOf(() => resolveBalancerOptions(path));
    expect(problems).toEqual([
      'malformed YAML at line 5, column 1: All mapping items must start at the same column',
    ]);
  });

  it('says when the file cannot be read', () => {
    const problems = problemsOf(() => resolveBalancerOptions(join(dir, 'missing.yml')));
    expect(problems[0]).toMatch(/cannot read the file/);
  });

  it('rejects unknown keys and bad values in TypeScript options with camelCase paths', () => {
    const problems = problemsOf(() =>
      resolveBalancerOptions({
        queueTimeout: 'soon',
        storage: { type: 'postgres' },
        ui: { username: 'admin' },
        endpoints: { predict: { capacity: 2.5 } },
        unknownThing: true,
      } as never),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^queueTimeout must be a number/),
        expect.stringMatching(/^storage\.type must be one of/),
        'ui: set both username and password, or neither',
        'endpoints.predict: endpoint keys are paths and must start with /',
        'endpoints.predict.capacity must be a positive integer',
        'unknownThing: unknown option',
      ]),
    );
  });

  it('requires a connection for redis storage', () => {
    expect(problemsOf(() => resolveBalancerOptions({ storage: { type: 'redis' } }))).toEqual([
      'storage: type redis needs url, redis or client',
    ]);
  });

  it('rejects a fallbackWindow not below leaseTtl with a BalancerConfigError naming the field', () => {
    const call = (): unknown =>
      resolveBalancerOptions({
        storage: { type: 'redis', url: 'redis://x', leaseTtl: 4, fallbackWindow: 4 },
      });
    expect(call).toThrow(BalancerConfigError);
    expect(problemsOf(call)).toEqual([
      'storage.fallbackWindow (4 s) must be shorter than storage.leaseTtl (4 s)',
    ]);
    // against the default leaseTtl (5 s), and accepted when shorter
    expect(problemsOf(() => resolveBalancerOptions({ storage: { fallbackWindow: 6 } }))).toEqual([
      'storage.fallbackWindow (6 s) must be shorter than storage.leaseTtl (5 s)',
    ]);
    expect(() =>
      resolveBalancerOptions({ storage: { leaseTtl: 5, fallbackWindow: 2 } }),
    ).not.toThrow();
  });

  it('accepts health_endpoint false and a live client object untouched', () => {
    const client = { fake: 'client', nested: { fn: () => 1 } };
    const o = resolveBalancerOptions({ healthEndpoint: false, storage: { type: 'redis', client } });
    expect(o.healthEndpoint).toBeNull();
    expect(o.storage.client).toBe(client);
  });

  it('resolves the metrics settings: on, off, tuned, and each bad value named', () => {
    expect(resolveBalancerOptions({}).metrics).toEqual({
      enable: true,
      serve: true,
      prefix: '',
      defaultLabels: {},
      registry: undefined,
    });
    expect(resolveBalancerOptions({ metrics: false }).metrics).toMatchObject({
      enable: false,
      serve: false,
    });
    const registry = {
      registerMetric: () => undefined,
      removeSingleMetric: () => undefined,
      getSingleMetric: () => undefined,
      metrics: async () => '',
      contentType: 'text/plain',
    };
    const tuned = resolveBalancerOptions({
      metrics: { registry, prefix: 'app_', defaultLabels: { service: 'x' } },
    }).metrics;
    expect(tuned).toMatchObject({ enable: true, serve: false, prefix: 'app_' });
    expect(tuned.registry).toBe(registry); // the live object, not a copy
    expect(tuned.defaultLabels).toEqual({ service: 'x' });

    // YAML: label names are user data, never camel-cased.
    const path = yamlFile(
      'metrics.yml',
      'metrics:\n  prefix: app_\n  default_labels:\n    service_name: scoring\n',
    );
    expect(resolveBalancerOptions(path).metrics.defaultLabels).toEqual({ service_name: 'scoring' });

    const problems = problemsOf(() =>
      resolveBalancerOptions({
        metrics: {
          prefix: '9-x',
          defaultLabels: { pool: 'p', 'bad-name': 'v' },
          registry: {} as never,
          servee: true,
        } as never,
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'metrics.servee: unknown option',
        'metrics.prefix must be a Prometheus name prefix (letters, digits, _ and :)',
        'metrics.registry must be a prom-client Registry',
        'metrics.defaultLabels.pool: the balancer uses this label itself',
        'metrics.defaultLabels.bad-name: not a Prometheus label name',
      ]),
    );
    expect(problemsOf(() => resolveBalancerOptions({ metrics: 'yes' as never }))).toEqual([
      'metrics must be true, false or an object of metrics settings',
    ]);
  });

  it('resolves routePrefix and stats', () => {
    expect(resolveBalancerOptions({}).routePrefix).toBe('balancer');
    expect(resolveBalancerOptions({ routePrefix: '/ops/lb/' }).routePrefix).toBe('ops/lb');
    expect(resolveBalancerOptions(yamlFile('prefix.yml', 'route_prefix: lb\n')).routePrefix).toBe(
      'lb',
    );
    expect(problemsOf(() => resolveBalancerOptions({ routePrefix: '../x?' }))).toEqual([
      'routePrefix must be a path such as balancer or ops/balancer',
    ]);
    expect(resolveBalancerOptions({ stats: false, ui: { enable: false } }).stats).toBe(false);
  });

  it('loadBalancerConfig returns camelCase options ready for forRoot()', () => {
    const o = loadBalancerConfig(join(__dirname, '../../test/fixtures/seed-balancer.yml'));
    expect(o.latencyThresholdMs).toBe(2000);
    expect(o.healthCheckInterval).toBe(10);
    expect(o.endpoints?.['/predict'].method).toBe('POST');
  });
});
