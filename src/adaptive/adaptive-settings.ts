import type { AdaptiveOptions } from '../config/balancer-options';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import type { ResolvedPool } from '../admission/pool-registry';

/** Adaptive settings of one pool, before the bounds are derived from its base capacity. */
export interface PoolAdaptiveSettings {
  min?: number;
  max?: number;
  /** Fixed interval; `null`: scaled to the pool's own latency (see `autoIntervalMs`). */
  intervalMs: number | null;
  reprobeIntervalMs: number;
  latencyTolerance?: number;
}

/** An automatic interval lasts this many of the pool's mean slot times... */
export const AUTO_INTERVAL_LATENCIES = 5;
/** ...within these bounds (ms). */
export const AUTO_INTERVAL_MIN_MS = 200;
export const AUTO_INTERVAL_MAX_MS = 60_000;
/** The first automatic interval, before any latency is known (ms). */
export const AUTO_INTERVAL_START_MS = 1000;

/**
 * The length of an automatic interval: `AUTO_INTERVAL_LATENCIES` mean slot times (a 50 ms route
 * decides every 250 ms, a 3 s route every 15 s), so the controller reacts in the same number of
 * the route's own service times whatever they are. `latencyMs` null: nothing measured yet.
 */
export function autoIntervalMs(latencyMs: number | null): number {
  if (latencyMs === null || !(latencyMs > 0)) return AUTO_INTERVAL_START_MS;
  return Math.min(
    AUTO_INTERVAL_MAX_MS,
    Math.max(AUTO_INTERVAL_MIN_MS, AUTO_INTERVAL_LATENCIES * latencyMs),
  );
}

/** The interval right after a change lasts this many mean slot times: requests admitted under
 * the old capacity drain, and the controller does not judge it (automatic intervals only). */
export const TRANSITION_LATENCIES = 2;
/** ...and at least this long (ms). */
export const TRANSITION_MIN_MS = 100;

/** Length of the transition interval after a change, automatic intervals only. */
export function transitionMs(latencyMs: number | null): number {
  if (latencyMs === null || !(latencyMs > 0)) return AUTO_INTERVAL_START_MS;
  return Math.min(
    AUTO_INTERVAL_MAX_MS,
    Math.max(TRANSITION_MIN_MS, TRANSITION_LATENCIES * latencyMs),
  );
}

/**
 * Settings of the controller that takes over a pool whose probe was cut short or failed (its
 * capacity is the best the probe could prove, not a measured optimum): the defaults.
 */
export const CONVERGE_SETTINGS: PoolAdaptiveSettings = { intervalMs: null, reprobeIntervalMs: 0 };

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
    intervalMs: merged.interval === undefined ? null : merged.interval * 1000,
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
