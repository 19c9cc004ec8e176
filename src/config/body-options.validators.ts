import { registerDecorator, type ValidationArguments } from 'class-validator';

/** `'10mb'`, `'512kb'`, `'1gb'`, `'100b'` or a whole number of bytes, as body-parser reads it. */
const LIMIT = /^\d+(\.\d+)?\s*(b|kb|mb|gb)$/i;

export function isBodyLimit(value: unknown): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0;
  return typeof value === 'string' && LIMIT.test(value.trim());
}

/** `bodyParser`: a boolean or `{ limit, rawBody }` (the object's fields are checked here too). */
export function IsBodyParser(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isBodyParser',
      target: target.constructor,
      propertyName: propertyName as string,
      validator: {
        validate(value: unknown): boolean {
          if (typeof value === 'boolean') return true;
          if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
          const { limit, rawBody, ...rest } = value as Record<string, unknown>;
          if (Object.keys(rest).length > 0) return false;
          if (limit !== undefined && !isBodyLimit(limit)) return false;
          return rawBody === undefined || typeof rawBody === 'boolean';
        },
        defaultMessage: (a?: ValidationArguments) =>
          `${a?.property ?? 'bodyParser'} must be true, false or { limit: '10mb', rawBody: boolean }`,
      },
    });
}
