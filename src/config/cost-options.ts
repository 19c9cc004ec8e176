import type { IncomingMessage } from 'node:http';
import { IsInt, IsOptional, IsString, Matches, Min, ValidateBy } from 'class-validator';
import { all } from './overload-options';

/*
 * Cost units of one endpoint (issue 22): `cost` (a function of the request) or `costHeader` (a
 * header the app trusts) gives the units a request holds while it runs; `maxQueueCost` bounds
 * the units waiting. All optional and off by default: a pool without them counts 1 per request.
 * The rule (fit, strict head-of-line, a request larger than the capacity runs alone) is in
 * `storage/cost-units.ts`; docs/cost-and-deadlines.md explains it.
 */

/**
 * Reads the units a request holds (tokens, pixels, bytes): a positive number, fractions rounded
 * up. Runs on the Node request before its body is read (headers, URL); correct the reservation
 * in the handler once the real size is known (`@CostReservation()`).
 */
export type CostFunction = (req: IncomingMessage) => number;

/** The cost settings of one endpoint (`endpoints[path]` and `@Balanced()`). */
export interface CostSettings {
  cost?: CostFunction;
  costHeader?: string;
  maxQueueCost?: number;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const POSITIVE_UNITS = '$property must be a positive integer (units)';

/** The validation rules of each cost option, shared by `EndpointOptions` and `@Balanced()`. */
export const CostRules = {
  cost: (): PropertyDecorator =>
    all(
      IsOptional(),
      ValidateBy({
        name: 'isCostFunction',
        validator: {
          validate: (value) => typeof value === 'function',
          defaultMessage: () =>
            '$property must be a function (req) => number of units (TypeScript only; in YAML ' +
            'use cost_header)',
        },
      }),
    ),
  costHeader: (): PropertyDecorator =>
    all(
      IsOptional(),
      IsString(),
      Matches(HEADER_NAME, { message: '$property must be an HTTP header name such as x-tokens' }),
    ),
  maxQueueCost: (): PropertyDecorator =>
    all(IsOptional(), IsInt({ message: POSITIVE_UNITS }), Min(1, { message: POSITIVE_UNITS })),
};

/** `cost` and `costHeader` on the same layer: one of them only. */
export function costConflicts(settings: CostSettings, where: string): string[] {
  return settings.cost !== undefined && settings.costHeader !== undefined
    ? [`${where}: cost and costHeader are both set; use one of them`]
    : [];
}

/**
 * One endpoint's cost settings from its layers, highest precedence first (`endpoints[path]`,
 * then `@Balanced()`): the source (`cost` or `costHeader`) comes whole from the first layer that
 * sets either, so a header in the options replaces a function in the decorator.
 */
export function mergeCostSettings(layers: ReadonlyArray<CostSettings | undefined>): CostSettings {
  const out: CostSettings = {};
  const source = layers.find((l) => l?.cost !== undefined || l?.costHeader !== undefined);
  if (source?.cost !== undefined) out.cost = source.cost;
  else if (source?.costHeader !== undefined) out.costHeader = source.costHeader;
  const max = layers.find((l) => l?.maxQueueCost !== undefined)?.maxQueueCost;
  if (max !== undefined) out.maxQueueCost = max;
  return out;
}
