import type { ValidationError } from 'class-validator';

/**
 * Turning class-validator's error tree into one line per offending option, each named by the
 * path the user wrote (`locate` maps a camelCase path to the YAML spelling and line, or keeps
 * it as written for module options).
 */

const TYPE_CONSTRAINTS = new Set([
  'whitelistValidation',
  'isNumber',
  'isInt',
  'isString',
  'isBoolean',
  'isObject',
  'isIn',
]);

export type Locate = (camelPath: string[]) => string;

export function collect(
  errors: ValidationError[],
  prefix: string[],
  locate: Locate,
  out: string[],
): void {
  for (const err of errors) {
    const path = [...prefix, err.property];
    if (err.constraints) {
      const shown = locate(path);
      // A value of the wrong type also fails its range checks; say only what matters.
      const all = Object.entries(err.constraints);
      const typeErrors = all.filter(([kind]) => TYPE_CONSTRAINTS.has(kind));
      for (const [kind, message] of typeErrors.length ? typeErrors : all) {
        if (kind === 'whitelistValidation') {
          out.push(`${shown}: unknown option`);
        } else if (message.startsWith(`${err.property} `)) {
          out.push(`${shown} ${message.slice(err.property.length + 1)}`);
        } else {
          out.push(`${shown}: ${message}`);
        }
      }
    }
    if (err.children?.length) collect(err.children, path, locate, out);
  }
}

export const VALIDATE = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
} as const;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
