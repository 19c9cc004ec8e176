import { DRAIN_EWMA_WEIGHT } from '../../queue-order';

/**
 * Lua helpers of `queueTargetMs` (CoDel-like), part of the prelude. State in the meta hash:
 * `target` and `target_interval` (ms, from the latest acquire that passed a target, so any
 * worker's release samples with it), `above_since`, `last_grant_at` and `drain_ms`. A pool that
 * never saw a target has no `target`: nothing is sampled and nothing is shed.
 */
export const QUEUE_TARGET = `
-- A waiter granted from the queue after waiting waited ms.
local function sample(waited)
  local m = redis.call('HMGET', meta, 'target', 'above_since', 'last_grant_at', 'drain_ms',
    'target_interval')
  if not m[1] then return end
  if waited < tonumber(m[1]) then
    -- A short wait ends a spell, unless the queue already stands: then it stays standing until
    -- it empties (the waiters shedding lets in wait about the target).
    if m[2] and now - tonumber(m[2]) < tonumber(m[5] or '0') then
      redis.call('HDEL', meta, 'above_since')
    end
  elseif not m[2] then
    redis.call('HSET', meta, 'above_since', now)
  end
  if m[3] then
    local gap = now - tonumber(m[3])
    local drain = tonumber(m[4])
    if drain then drain = (1 - ${DRAIN_EWMA_WEIGHT}) * drain + ${DRAIN_EWMA_WEIGHT} * gap else drain = gap end
    redis.call('HSET', meta, 'drain_ms', num(drain))
  end
  redis.call('HSET', meta, 'last_grant_at', now)
end

-- After waiters left: an empty queue ends an above-target spell and the drain gap in progress,
-- and its per-waiter and per-tenant tables are empty (cleared, so nothing can outlive it).
local function emptied()
  if redis.call('ZCARD', queue) > 0 then return end
  redis.call('HDEL', meta, 'above_since', 'last_grant_at', 'qx')
  redis.call('DEL', waiters, tqueued, trounds)
end

-- A request that would queue with key key behind queued waiters passes target (and its
-- interval): recorded; while the queue stands and the drain interval is known, returns its
-- Retry-After (s) when its predicted wait, (waiters with a key <= its + 1) x drain, passes it.
local function shedRetryAfter(target, interval, key, queued)
  redis.call('HSET', meta, 'target', target, 'target_interval', interval)
  local m = redis.call('HMGET', meta, 'above_since', 'drain_ms')
  local drain = tonumber(m[2])
  if not m[1] or now - tonumber(m[1]) < interval or not drain or drain <= 0 then return nil end
  local ahead = redis.call('ZCOUNT', queue, '-inf', num(key))
  if (ahead + 1) * drain <= target then return nil end
  return math.max(1, math.ceil(queued * drain / 1000))
end
`;
