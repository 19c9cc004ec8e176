/** Raw module options as the user gave them (object or YAML path). */
export const BALANCER_RAW_OPTIONS = 'BALANCER:RAW_OPTIONS';
/** Validated options with every default applied (`ResolvedBalancerOptions`). */
export const BALANCER_OPTIONS = 'BALANCER:MODULE_OPTIONS';
/** Metadata key written by `@Balanced()`. */
export const BALANCED_METADATA = 'BALANCER:BALANCED';
/** Header that carries the per-process probe secret; requests with it skip admission. */
export const PROBE_HEADER = 'x-balancer-probe';
/** Prefix and metadata the balancer's own controllers were registered with (set by `forRoot*`). */
export const BALANCER_ROUTES = 'BALANCER:ROUTES';
/**
 * Metadata key set (to `true`) on the classes of the balancer's own controllers (stats,
 * health, history, metrics), so an app's global guard can let them through:
 * `reflector.get(BALANCER_ROUTE_METADATA, context.getClass())`.
 */
export const BALANCER_ROUTE_METADATA = 'BALANCER:ROUTE';
