/**
 * The order of a pool's queue, shared by both stores (the Redis store computes the same in Lua,
 * see `redis/scripts/tenant-tables.ts` and `redis/scripts/queue.ts`). Lower keys are served first.
 *
 * - **Tenants, round-robin.** Every waiter gets a round: one more than the later of the pool's
 *   current round (the largest round granted so far) and its tenant's last round. A tenant with
 *   200 waiters holds rounds r+1 … r+200; a tenant that arrives now gets r+1, so it is served
 *   next to the first of them, not after all of them. Without a tenant function every request
 *   belongs to one shared tenant and the rounds are plain arrival order (today's FIFO).
 * - **Priorities, aged.** key = round - priority x priorityAging. A request of priority p+1
 *   overtakes a waiter of priority p only when that waiter queued less than `priorityAging`
 *   rounds before it: a waiting request is overtaken by a bounded number of later arrivals, so
 *   a low priority is served later, but is never starved.
 * - Cost units (`cost-units.ts`) serve this order strictly: the head is granted when its units
 *   fit, and nobody behind it before it.
 * - Equal keys keep arrival order (memory: insertion order; Redis: member order, which is
 *   arrival order within a process and only reorders requests of different tenants or
 *   priorities that share a key).
 */

/** How many tenants a snapshot lists per ranking. */
export const TOP_TENANTS = 10;
/** How many tenants' admitted counts are tracked per pool (a heavy-hitters table). */
export const TRACKED_TENANTS = 100;
/** Longest tenant key kept, in characters; longer keys are cut (they come from requests). */
export const MAX_TENANT_LENGTH = 64;
/** Places in the queue one step of priority is worth, unless set. */
export const DEFAULT_PRIORITY_AGING = 1000;
/** Priorities are clamped to ±this (integers), so keys stay exact doubles. */
export const MAX_PRIORITY = 1000;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

/**
 * A tenant key from untrusted request data: a non-empty string, control characters replaced by
 * `?`, cut to `MAX_TENANT_LENGTH`. Anything else (no header, empty, not a string) is
 * `undefined`: the pool's shared default tenant.
 */
export function normalizeTenant(raw: unknown): string | undefined {
  if (Array.isArray(raw)) raw = raw[0];
  if (typeof raw !== 'string') return undefined;
  const cleaned = raw.trim().slice(0, MAX_TENANT_LENGTH).replace(CONTROL_CHARACTERS, '?');
  return cleaned === '' ? undefined : cleaned;
}

/** A priority from a user function or header: an integer in ±MAX_PRIORITY; anything else is 0. */
export function normalizePriority(raw: unknown): number {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isFinite(n)) return 0;
  return Math.max(-MAX_PRIORITY, Math.min(MAX_PRIORITY, Math.trunc(n)));
}

/** The round of a new waiter: after the pool's current round and its tenant's last one. */
export function nextRound(currentRound: number, tenantLastRound: number | undefined): number {
  return Math.max(currentRound, tenantLastRound ?? 0) + 1;
}

/** The queue key of a waiter (lower first). */
export function queueKey(round: number, priority: number, aging: number): number {
  return round - priority * aging;
}

/**
 * `queueTargetMs`: how long every grant from the queue must have waited past the target before
 * the queue counts as standing (CoDel's interval): five targets, at least 100 ms. A burst that
 * drains within it sheds nothing.
 */
export function queueTargetIntervalMs(targetMs: number): number {
  return Math.max(100, 5 * targetMs);
}

/**
 * Weight of the newest gap in the drain-interval average: about the mean of the last 32 gaps.
 * Grants come in bursts (several slots free at once, gaps of 0) and a short average read at a
 * random moment reads low, which lets the queue stand at twice the target.
 */
export const DRAIN_EWMA_WEIGHT = 1 / 32;
