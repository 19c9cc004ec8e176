/**
 * Milliseconds per unit of the `grpc-timeout` syntax (Hours, Minutes, Seconds, milliseconds); a
 * value without a unit is milliseconds (`x-request-timeout-ms`).
 */
const UNIT_MS: Record<string, number> = {
  '': 1,
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
};

/** Units below a millisecond (micro-, nanoseconds): how many make one millisecond. */
const PER_MS: Record<string, number> = { u: 1000, n: 1_000_000 };

/** A positive integer of at most 8 digits, then an optional unit (as gRPC's TimeoutValue). */
const TIMEOUT = /^(\d{1,8})([HMSmun]?)$/;

/**
 * The relative timeout a deadline header carries, in milliseconds: `2000` (ms), or the
 * `grpc-timeout` syntax `100m`, `2S`, `1M`, `1H`, `500u`, `5n`. Surrounding spaces are ignored;
 * of a repeated header the first value counts. `null` for anything else: empty, signed,
 * fractional, more than 8 digits, an unknown unit, or zero (gRPC's TimeoutValue is positive,
 * and many clients write 0 for "no timeout").
 */
export function parseDeadlineHeader(value: string | string[] | undefined): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return null;
  const match = TIMEOUT.exec(text.trim());
  if (!match) return null;
  const amount = Number(match[1]);
  if (amount === 0) return null;
  const unit = match[2];
  return unit in PER_MS ? amount / PER_MS[unit] : amount * UNIT_MS[unit];
}
