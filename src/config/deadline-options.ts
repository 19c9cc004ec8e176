import type { IncomingMessage } from 'node:http';
import { IsOptional, IsString, Matches, ValidateBy } from 'class-validator';
import { all } from './overload-options';

/*
 * Deadlines of one endpoint (issue 22): the request says how long its client will wait, through
 * a header (`deadlineHeader`) or a function of the request (`deadline`). Off by default: a pool
 * without either keeps today's behaviour (the queue timeout alone bounds the wait).
 */

/**
 * Reads a request's deadline: a number is the time its client still waits, in milliseconds from
 * now (relative, like the header); a `Date` is an absolute moment (for an epoch timestamp return
 * `new Date(epochMs)`). `undefined`, a non-finite number or an invalid `Date`: no deadline.
 * Runs on the Node request, possibly before its body is read.
 */
export type DeadlineFunction = (req: IncomingMessage) => number | Date | undefined;

/** The deadline settings of one endpoint (`endpoints[path]` and `@Balanced()`). */
export interface DeadlineSettings {
  deadlineHeader?: string;
  deadline?: DeadlineFunction;
}

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const DeadlineRules = {
  deadlineHeader: (): PropertyDecorator =>
    all(
      IsOptional(),
      IsString({ message: '$property must be an HTTP header name such as x-request-timeout-ms' }),
      Matches(HEADER_NAME, {
        message: '$property must be an HTTP header name such as x-request-timeout-ms',
      }),
    ),
  deadline: (): PropertyDecorator =>
    all(
      IsOptional(),
      ValidateBy({
        name: 'isDeadlineFunction',
        validator: {
          validate: (value) => typeof value === 'function',
          defaultMessage: () =>
            '$property must be a function (req) => milliseconds | Date | undefined ' +
            '(TypeScript only; in YAML use deadline_header)',
        },
      }),
    ),
};

/** A function and a header in the same layer (`where` names it): one of them must go. */
export function deadlineConflicts(settings: DeadlineSettings, where: string): string[] {
  return settings.deadline !== undefined && settings.deadlineHeader !== undefined
    ? [`${where}: deadline and deadlineHeader are both set; use one of them`]
    : [];
}

/**
 * One endpoint's deadline source from its layers, highest precedence first (`endpoints[path]`,
 * `@Balanced()` on the method, on the controller), then the global `deadlineHeader`: the first
 * layer that sets either the function or the header gives the pair whole.
 */
export function mergeDeadlineSettings(
  layers: ReadonlyArray<DeadlineSettings | undefined>,
  globalHeader?: string,
): DeadlineSettings {
  const layer = layers.find((l) => l?.deadline !== undefined || l?.deadlineHeader !== undefined);
  if (layer?.deadline !== undefined) return { deadline: layer.deadline };
  const header = layer?.deadlineHeader ?? globalHeader;
  return header === undefined ? {} : { deadlineHeader: header };
}
