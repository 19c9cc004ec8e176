/** `prom-client` is an optional peer dependency: this is the one place that loads it. */
export type PromClient = typeof import('prom-client');

/**
 * `require('prom-client')`, or `null` when it is not installed (then `/balancer/metrics` is not
 * mounted). Any other failure while loading it is a real error and is thrown.
 */
export function loadPromClient(load: (id: string) => unknown = require): PromClient | null {
  try {
    return load('prom-client') as PromClient;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes("'prom-client'")) return null;
    throw err;
  }
}
