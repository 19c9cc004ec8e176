import { BalancerConfigError } from './balancer-config.error';
import { parseBalancerYaml } from './yaml-config.loader';
import { DEFAULTS, resolveBalancerOptions } from './resolve-options';

describe('probe.warmupLatencies', () => {
  it('defaults to 3, with warmupMs 300 as the ceiling', () => {
    const r = resolveBalancerOptions({});
    expect(DEFAULTS.warmupLatencies).toBe(3);
    expect(r.probe).toMatchObject({ warmupLatencies: 3, warmupMs: 300 });
  });

  it('reads warmup_latencies from YAML (0: the fixed warm-up)', () => {
    const loaded = parseBalancerYaml(
      ['probe:', '  warmup_latencies: 0', '  warmup_ms: 200'].join('\n'),
      'balancer.yml',
    );
    expect(resolveBalancerOptions(loaded.options).probe).toMatchObject({
      warmupLatencies: 0,
      warmupMs: 200,
    });
  });

  it('names the field of a bad value', () => {
    expect(() => resolveBalancerOptions({ probe: { warmupLatencies: -1 } })).toThrow(
      BalancerConfigError,
    );
    expect(() => resolveBalancerOptions({ probe: { warmupLatencies: -1 } })).toThrow(
      /warmupLatencies/,
    );
  });
});
