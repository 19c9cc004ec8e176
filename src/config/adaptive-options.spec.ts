import { parseBalancerYaml } from './yaml-config.loader';
import { resolveBalancerOptions } from './resolve-options';
import { BalancerConfigError } from './balancer-config.error';
import { DEFAULTS } from './resolve-options';

function fromYaml(text: string) {
  const loaded = parseBalancerYaml(text, 'balancer.yml');
  return { loaded, resolve: () => resolveBalancerOptions(loaded.options) };
}

describe('adaptive and probe-rule options', () => {
  it('is off by default; the probe rule defaults to a 95 % share and 10 latencies per level', () => {
    const r = resolveBalancerOptions({});
    expect(r.adaptive).toBe(false);
    expect(r.probe.throughputShare).toBe(DEFAULTS.throughputShare);
    expect(r.probe.throughputShare).toBe(0.95);
    expect(r.probe.levelLatencies).toBe(10);
  });

  it('reads adaptive globally and per endpoint from YAML (snake_case)', () => {
    const { loaded } = fromYaml(
      [
        'adaptive:',
        '  interval: 1',
        '  reprobe_interval: 600',
        '  latency_tolerance: 0.3',
        'probe:',
        '  throughput_share: 0.9',
        '  level_latencies: 20',
        'endpoints:',
        '  /predict:',
        '    adaptive: { min: 2, max: 12 }',
        '  /embed:',
        '    adaptive: false',
      ].join('\n'),
    );
    const r = resolveBalancerOptions(loaded.options);
    expect(r.adaptive).toMatchObject({ interval: 1, reprobeInterval: 600, latencyTolerance: 0.3 });
    expect(r.endpoints['/predict'].adaptive).toMatchObject({ min: 2, max: 12 });
    expect(r.endpoints['/embed'].adaptive).toBe(false);
    expect(r.probe).toMatchObject({ throughputShare: 0.9, levelLatencies: 20 });
  });

  it('names every bad adaptive value', () => {
    let err: unknown;
    try {
      resolveBalancerOptions({
        adaptive: 'yes' as unknown as boolean,
        probe: { throughputShare: 1.5 },
        endpoints: {
          '/a': { adaptive: { min: 0 } },
          '/b': { adaptive: { min: 9, max: 3 } },
          '/c': { adaptive: { interval: 'often' as unknown as number } },
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BalancerConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/adaptive must be true, false or a mapping/);
    expect(message).toMatch(/probe\.throughputShare must not be greater than 1/);
    expect(message).toMatch(/endpoints\.\/a\.adaptive\.min must be a positive integer/);
    expect(message).toMatch(/endpoints\.\/b\.adaptive: min \(9\) must not exceed max \(3\)/);
    expect(message).toMatch(/endpoints\.\/c\.adaptive\.interval must be a number of seconds/);
  });
});
