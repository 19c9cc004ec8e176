/** Raw module options as the user gave them (object or YAML path). */
export const BALANCER_RAW_OPTIONS = 'BALANCER:RAW_OPTIONS';
/** Validated options with every default applied (`ResolvedBalancerOptions`). */
export const BALANCER_OPTIONS = 'BALANCER:MODULE_OPTIONS';
/** Metadata key written by `@Balanced()`. */
export const BALANCED_METADATA = 'BALANCER:BALANCED';
/** Header that carries the per-process probe secret; requests with it skip admission. */
export const PROBE_HEADER = 'x-balancer-probe';
/** Route prefix of the balancer's own endpoints (stats, health, metrics). */
export const BALANCER_ROUTE_PREFIX = 'balancer';
