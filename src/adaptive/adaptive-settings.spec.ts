import { resolveBalancerOptions } from '../config/resolve-options';
import type { ResolvedPool } from '../admission/pool-registry';
import { adaptiveBounds, adaptiveSettingsFor } from './adaptive-settings';

const pool = (key: string, paths: string[] = [key]): ResolvedPool =>
  ({ key, routes: paths.map((path) => ({ method: 'POST', path })) }) as ResolvedPool;

describe('adaptiveSettingsFor', () => {
  it('is off unless switched on globally or for the endpoint', () => {
    expect(adaptiveSettingsFor(resolveBalancerOptions({}), pool('/a'))).toBeNull();
    const on = resolveBalancerOptions({ adaptive: true });
    expect(adaptiveSettingsFor(on, pool('/a'))).toMatchObject({
      intervalMs: null,
      reprobeIntervalMs: 0,
    });
  });

  it('lets an endpoint override the global setting either way, merging the mappings', () => {
    const o = resolveBalancerOptions({
      adaptive: { interval: 1, max: 40 },
      endpoints: { '/off': { adaptive: false }, '/own': { adaptive: { min: 3 } } },
    });
    expect(adaptiveSettingsFor(o, pool('/off'))).toBeNull();
    expect(adaptiveSettingsFor(o, pool('/own'))).toMatchObject({
      min: 3,
      max: 40,
      intervalMs: 1000,
    });
    const only = resolveBalancerOptions({ endpoints: { '/x': { adaptive: true } } });
    // A named pool finds its endpoint through its routes' paths.
    expect(adaptiveSettingsFor(only, pool('gpu', ['/x']))).not.toBeNull();
    expect(adaptiveSettingsFor(only, pool('/y'))).toBeNull();
  });

  it('derives [min, max] from the base capacity unless given', () => {
    expect(adaptiveBounds({ intervalMs: 1, reprobeIntervalMs: 0 }, 8)).toEqual({ min: 2, max: 16 });
    expect(adaptiveBounds({ intervalMs: 1, reprobeIntervalMs: 0 }, 1)).toEqual({ min: 1, max: 2 });
    expect(adaptiveBounds({ min: 5, intervalMs: 1, reprobeIntervalMs: 0 }, 8)).toEqual({
      min: 5,
      max: 16,
    });
  });
});
