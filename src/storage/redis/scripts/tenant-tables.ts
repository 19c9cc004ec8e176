import { TRACKED_TENANTS } from '../../queue-order';

/**
 * Lua helpers of the queue order (`queue-order.ts`): rounds, per-waiter info and per-tenant
 * tables, kept exact by every path that adds or removes a waiter. Part of the prelude (it uses
 * its key and time locals). The shared default tenant is the empty string.
 *
 *   meta 'round'     the largest round granted so far (the current round)
 *   waiters          hash: waiter id -> 'round enqueuedAt tenant' (enqueuedAt: Redis ms)
 *   tenant-queued    zset: tenant -> minus its queued count (ZRANGE: largest first, ties by name)
 *   tenant-rounds    hash: tenant -> its last round
 *   tenant-admitted  zset: tracked tenant -> minus its admitted count (at most TRACKED_TENANTS)
 *
 * A tenant's queued count and last round go with its last waiter, so both tables stay bounded
 * by the queue and a tenant that comes back starts from the current round.
 */
export const TENANT_TABLES = `
local function roundFor(tenant)
  local current = tonumber(redis.call('HGET', meta, 'round')) or 0
  local last = tonumber(redis.call('HGET', trounds, tenant)) or 0
  return math.max(current, last) + 1
end

local function enqueue(id, tenant, round, key)
  redis.call('ZADD', queue, num(key), id)
  redis.call('ZADD', qexp, now + ttl, id)
  redis.call('HSET', waiters, id, string.format('%d %d ', round, now) .. tenant)
  redis.call('HSET', trounds, tenant, round)
  redis.call('ZINCRBY', tqueued, -1, tenant)
end

-- Take waiter id out of the queue and out of its tenant's count. Returns whether it was queued,
-- then its round, enqueue time and tenant (none for an entry without info, which only a hand or
-- an older version of these scripts writes: it is served as it stands).
local function unqueue(id)
  local queued = redis.call('ZREM', queue, id) == 1
  if queued then dropQueued(id) end
  redis.call('ZREM', qexp, id)
  local info = redis.call('HGET', waiters, id)
  if not info then return queued end
  redis.call('HDEL', waiters, id)
  local round, at, tenant = string.match(info, '^(%d+) (%d+) (.*)$')
  if tonumber(redis.call('ZINCRBY', tqueued, 1, tenant)) >= 0 then
    redis.call('ZREM', tqueued, tenant)
    redis.call('HDEL', trounds, tenant)
  end
  return queued, tonumber(round), tonumber(at), tenant
end

-- Space-Saving: a tracked tenant counts on; a new one is inserted with 1 while there is room,
-- else it replaces the smallest entry (smallest count, then smallest name) with its count + 1.
local function countAdmitted(tenant)
  if tenant == '' then return end
  if redis.call('ZSCORE', tadmitted, tenant) then
    redis.call('ZINCRBY', tadmitted, -1, tenant)
  elseif redis.call('ZCARD', tadmitted) < ${TRACKED_TENANTS} then
    redis.call('ZADD', tadmitted, -1, tenant)
  else
    local last = redis.call('ZRANGE', tadmitted, -1, -1, 'WITHSCORES')
    local victim = redis.call('ZRANGEBYSCORE', tadmitted, last[2], last[2], 'LIMIT', 0, 1)[1]
    redis.call('ZREM', tadmitted, victim)
    redis.call('ZADD', tadmitted, tonumber(last[2]) - 1, tenant)
  end
end

-- A grant given back at once (the waiter had left): one admission less, if still tracked.
local function uncountAdmitted(tenant)
  if tenant == '' or not redis.call('ZSCORE', tadmitted, tenant) then return end
  if tonumber(redis.call('ZINCRBY', tadmitted, 1, tenant)) >= 0 then
    redis.call('ZREM', tadmitted, tenant)
  end
end
`;
