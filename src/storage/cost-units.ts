/**
 * Cost units (issue 22), shared by both stores (the Redis store applies the same rule in Lua,
 * see `redis/scripts/units.ts`).
 *
 * A request holds `cost` units while it runs (1 unless the pool is costed), and a pool's
 * capacity counts units. The rule:
 *
 * - **Fit.** A request is admitted when its units fit in the capacity minus the units in
 *   flight, or when nothing is in flight at all: a request larger than the whole capacity runs
 *   alone (refusing it would fail every such request for good, while a capacity can be a
 *   conservative probe result or an adaptive low point).
 * - **Strict head-of-line.** The queue keeps its order (`queue-order.ts`: arrival, tenants
 *   round-robin, aged priorities). The head is granted when it fits; nobody behind it is
 *   granted before it, even a request that would fit. So a large request at the head waits for
 *   units to free up, and is never starved by a stream of small ones: the units in flight can
 *   only go down until it fits.
 * - Uncosted pools count 1 per request: `units + 1 <= capacity` is `active < capacity`, today's
 *   rule.
 */

/** Largest cost a request may name: well inside exact doubles, so unit sums stay exact. */
export const MAX_COST = 1e12;

/** Units admitted under `capacity` with `inFlight` units held: the fit rule above. */
export function unitsFit(inFlight: number, cost: number, capacity: number | null): boolean {
  if (capacity === null || capacity <= 0) return false;
  return inFlight + cost <= capacity || inFlight <= 0;
}

/** Why a cost value is refused, or `null` when it is a valid number of units. */
export function costProblem(units: unknown): string | null {
  if (typeof units !== 'number' || Number.isNaN(units)) return 'is not a number';
  if (!Number.isFinite(units)) return 'is not finite';
  if (units <= 0) return 'is not positive';
  if (units > MAX_COST) return `is larger than ${MAX_COST}`;
  return null;
}

/** A valid cost as whole units: fractions are rounded up (a unit is never given away). */
export function wholeUnits(units: number): number {
  return Math.ceil(units);
}

/** A cost (or a correction) that is not a positive finite number of units up to `MAX_COST`. */
export class InvalidCostError extends Error {
  constructor(
    readonly what: string,
    readonly value: unknown,
    problem: string,
  ) {
    super(
      `${what} ${problem} (got ${describe(value)}): a cost is a positive number of units ` +
        `up to ${MAX_COST}`,
    );
    this.name = 'InvalidCostError';
  }
}

/** `units` as whole units; throws `InvalidCostError` naming `what` when it is not valid. */
export function checkUnits(units: unknown, what: string): number {
  const problem = costProblem(units);
  if (problem !== null) throw new InvalidCostError(what, units, problem);
  return wholeUnits(units as number);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (typeof value === 'number' || typeof value === 'boolean' || value == null)
    return String(value);
  return typeof value;
}
