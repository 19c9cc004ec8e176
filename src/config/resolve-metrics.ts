import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { MetricsOptions, type MetricsRegistry } from './balancer-options';
import type { ResolvedBalancerOptions } from './resolve-options';
import { collect, isPlainObject, VALIDATE, type Locate } from './validation-report';

/** Label names the balancer's own series use; a default label may not take one of them. */
const RESERVED_LABELS = new Set(['pool', 'outcome', 'source', 'le']);

/**
 * The `metrics` option: `true`/`false`/absent or an object (registry, prefix, default labels),
 * validated into `problems`; `enabledByDefault` applies when the object leaves `enable` out.
 */
export function resolveMetrics(
  input: unknown,
  locate: Locate,
  problems: string[],
  enabledByDefault: boolean,
): ResolvedBalancerOptions['metrics'] {
  const off = { enable: false, serve: false, prefix: '', defaultLabels: {} };
  if (input === undefined || input === null || input === true) {
    return { ...off, enable: enabledByDefault, serve: enabledByDefault };
  }
  if (input === false) return off;
  if (!isPlainObject(input)) {
    problems.push(`${locate(['metrics'])} must be true, false or an object of metrics settings`);
    return off;
  }
  // The registry is a live object: keep it out of class-transformer.
  const { registry, ...data } = input;
  const m = plainToInstance(MetricsOptions, data);
  collect(validateSync(m, VALIDATE), ['metrics'], locate, problems);
  if (registry !== undefined) {
    const r = registry as Partial<MetricsRegistry> | null;
    if (
      !r ||
      typeof r !== 'object' ||
      typeof r.registerMetric !== 'function' ||
      typeof r.removeSingleMetric !== 'function'
    ) {
      problems.push(`${locate(['metrics', 'registry'])} must be a prom-client Registry`);
    }
  }
  const labels: Record<string, string> = {};
  if (isPlainObject(m.defaultLabels)) {
    for (const [name, value] of Object.entries(m.defaultLabels)) {
      const at = locate(['metrics', 'defaultLabels', name]);
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || name.startsWith('__')) {
        problems.push(`${at}: not a Prometheus label name`);
      } else if (RESERVED_LABELS.has(name)) {
        problems.push(`${at}: the balancer uses this label itself`);
      } else if (typeof value !== 'string' && typeof value !== 'number') {
        problems.push(`${at} must be a string`);
      } else {
        labels[name] = String(value);
      }
    }
  }
  const enable = m.enable ?? enabledByDefault;
  return {
    enable,
    serve: enable && (m.serve ?? registry === undefined),
    prefix: m.prefix ?? '',
    defaultLabels: labels,
    registry: registry as MetricsRegistry | undefined,
  };
}
