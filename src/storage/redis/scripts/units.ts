/**
 * Lua helpers of cost units (`cost-units.ts`), part of the prelude. A request that is not
 * costed holds 1 unit and writes nothing here, so an uncosted pool runs the scripts it ran
 * before. State:
 *
 *   costs  hash (KEYS[10]): waiter or lease id -> its units, only for units other than 1
 *   meta   'lx' the extra units (units - 1) of the leases in `costs`; 'qx' the same for the
 *          waiters; 'units_admitted' units granted so far (absent: 'admitted'); 'costed' set
 *          once a request named a cost or `maxQueueCost` (the snapshot shows units)
 *
 * Units in flight = ZCARD(leases) + lx; units queued = ZCARD(queue) + qx. Every path that adds
 * or removes a lease or a waiter keeps `costs`, lx and qx exact (an id is a waiter or a lease,
 * never both); an empty queue or lease table resets its counter, so no drift can outlive it.
 */
export const UNITS = `
local costs = KEYS[10]

local function unitsOf(id) return tonumber(redis.call('HGET', costs, id)) or 1 end

local function bump(field, d) if d ~= 0 then redis.call('HINCRBY', meta, field, d) end end

local function inFlight()
  return redis.call('ZCARD', leases) + (tonumber(redis.call('HGET', meta, 'lx')) or 0)
end

local function queuedUnits()
  return redis.call('ZCARD', queue) + (tonumber(redis.call('HGET', meta, 'qx')) or 0)
end

-- The fit rule: the units fit in the capacity left, or nothing is in flight (runs alone).
local function fits(u, cap)
  if not cap or cap <= 0 then return false end
  local used = inFlight()
  return used + u <= cap or used <= 0
end

-- A waiter of u units entered the queue.
local function queueUnits(id, u)
  if u == 1 then return end
  redis.call('HSET', costs, id, u)
  bump('qx', u - 1)
end

-- A waiter left the queue (granted or not): its queued units go.
local function dropQueued(id)
  local u = tonumber(redis.call('HGET', costs, id))
  if not u then return end
  redis.call('HDEL', costs, id)
  bump('qx', -(u - 1))
end

-- A lease of u units was recorded (granted, or recorded again during a hold).
local function leaseUnits(id, u)
  redis.call('HINCRBY', meta, 'units_admitted', u)
  if u == 1 then return end
  redis.call('HSET', costs, id, u)
  redis.call('HSET', meta, 'costed', 1)
  bump('lx', u - 1)
end

-- A lease left the table (released, expired, given back): its units go. Returns them.
local function dropLease(id)
  local u = tonumber(redis.call('HGET', costs, id))
  if not u then return 1 end
  redis.call('HDEL', costs, id)
  bump('lx', -(u - 1))
  return u
end

-- Remove a lease and its units; returns 1 when it was held.
local function unlease(id)
  local n = redis.call('ZREM', leases, id)
  if n == 1 then dropLease(id) end
  return n
end

-- Drop the expired leases, with their units.
local function expireLeases()
  if redis.call('HLEN', costs) > 0 then
    local gone = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
    for i = 1, #gone do dropLease(gone[i]) end
  end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  if redis.call('ZCARD', leases) == 0 then redis.call('HDEL', meta, 'lx') end
end
`;
