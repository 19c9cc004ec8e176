import type { AdaptiveOptions } from '../config/balancer-options';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import type { ResolvedPool } from '../admission/pool-registry';

/** Adaptive settings of one pool, before the bounds are derived from its base capacity. */
export interface PoolAdaptiveSettings {
  min?: number;
  max?: number;
  intervalMs: number;
  reprobeIntervalMs: number;
  latencyTolerance?: number;
}

export const ADAPTIVE_DEFAULT_INTERVAL_S = 2;

/**
 * Whether `pool` is adaptive, and how: `endpoints[path].adaptive` (for the pool key or any of
 * its routes' paths) over the global `adaptive`. `null` when off.
 */
export function adaptiveSettingsFor(
  options: ResolvedBalancerOptions,
  pool: ResolvedPool,
): PoolAdaptiveSettings | null {
  const paths = [pool.key, ...pool.routes.map((r) => r.path)];
  const own = paths
    .map((p) => options.endpoints[p]?.adaptive)
    .find((a): a is boolean | AdaptiveOptions => a !== undefined);
  const global = options.adaptive;
  const globalObj = typeof global === 'object' ? global : {};
  const ownObj = typeof own === 'object' ? own : {};
  const on = (a: boolean | AdaptiveOptions | undefined): boolean | undefined =>
    a === undefined ? undefined : typeof a === 'boolean' ? a : (a.enabled ?? true);
  if (!(on(own) ?? on(global) ?? false)) return null;
  const merged: AdaptiveOptions = { ...defined(globalObj), ...defined(ownObj) };
  return {
    min: merged.min,
    max: merged.max,
    intervalMs: (merged.interval ?? ADAPTIVE_DEFAULT_INTERVAL_S) * 1000,
    reprobeIntervalMs: (merged.reprobeInterval ?? 0) * 1000,
    latencyTolerance: merged.latencyTolerance,
  };
}

/** `[min, max]` around a base capacity: explicit bounds, else base / 4 .. 2 x base. */
export function adaptiveBounds(
  s: PoolAdaptiveSettings,
  base: number,
): { min: number; max: number } {
  const min = s.min ?? Math.max(1, Math.floor(base / 4));
  const max = Math.max(min, s.max ?? Math.max(2, 2 * base));
  return { min, max };
}

/** The keys of `o` that hold a value (option instances carry every declared key). */
function defined(o: AdaptiveOptions): AdaptiveOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
