/*
 * Lua scripts of the Redis store. Each runs atomically on the server, so "check the count,
 * then take a slot" can never overshoot, and every script first drops expired leases and dead
 * waiters, then hands free slots to the oldest waiters (`promote`).
 *
 * Keys of one pool (all share the hash tag `{pool}`, so they live in one Cluster slot):
 *   KEYS[1] meta    hash: capacity, source, admitted, rejected, timed_out, seq
 *   KEYS[2] leases  zset: lease id -> expiry (ms, Redis clock)
 *   KEYS[3] queue   zset: waiter id -> arrival number (global FIFO order)
 *   KEYS[4] qexp    zset: waiter id -> liveness expiry (ms); renewed while its process lives
 *   KEYS[5] workers zset: process id -> expiry (ms); the live worker count (some scripts only)
 *
 * Ids are `<processId>:<n>`; a grant is announced on the channel `<grantPrefix><processId>`
 * with the id as the message. Times come from Redis (`TIME`), never from the hosts' clocks.
 */

const PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local meta, leases, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function reap()
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  local dead = redis.call('ZRANGEBYSCORE', qexp, '-inf', now)
  for i = 1, #dead do
    redis.call('ZREM', queue, dead[i])
    redis.call('ZREM', qexp, dead[i])
  end
end

-- Grant free slots to the oldest waiters and tell their processes.
local function promote(grant, ttl)
  if redis.call('ZCARD', queue) == 0 then return end
  local cap = redis.call('HGET', meta, 'capacity')
  if not cap then return end
  local free = tonumber(cap) - redis.call('ZCARD', leases)
  while free > 0 do
    local head = redis.call('ZPOPMIN', queue)
    if #head == 0 then return end
    local id = head[1]
    local exp = redis.call('ZSCORE', qexp, id)
    redis.call('ZREM', qexp, id)
    -- The lease lives as long as the waiter's own liveness: a dead waiter's grant expires soon.
    redis.call('ZADD', leases, exp or (now + ttl), id)
    redis.call('HINCRBY', meta, 'admitted', 1)
    local sep = string.find(id, ':', 1, true)
    if sep then redis.call('PUBLISH', grant .. string.sub(id, 1, sep - 1), id) end
    free = free - 1
  end
end
`;

/**
 * ARGV: id, maxQueue, ttlMs, grantPrefix.
 * Returns 1 granted, 0 queued, -1 queue full.
 */
const ACQUIRE = `${PRELUDE}
local id, maxQueue, ttl, grant = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
reap()
promote(grant, ttl)
local cap = redis.call('HGET', meta, 'capacity')
local queued = redis.call('ZCARD', queue)
if cap and queued == 0 and redis.call('ZCARD', leases) < tonumber(cap) then
  redis.call('ZADD', leases, now + ttl, id)
  redis.call('HINCRBY', meta, 'admitted', 1)
  return 1
end
if queued >= maxQueue then
  redis.call('HINCRBY', meta, 'rejected', 1)
  return -1
end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('ZADD', queue, seq, id)
redis.call('ZADD', qexp, now + ttl, id)
return 0
`;

/** ARGV: id, ttlMs, grantPrefix. Returns 1 when the lease was held, 0 when already gone. */
const RELEASE = `${PRELUDE}
local n = redis.call('ZREM', leases, ARGV[1])
reap()
promote(ARGV[3], tonumber(ARGV[2]))
return n
`;

/**
 * A waiter gives up (reason timeout | aborted | closed).
 * ARGV: id, reason, ttlMs, grantPrefix.
 * Returns 0 removed from the queue, 1 already granted and kept (timeout only: the grant came
 * first), 2 already granted and given back, -1 not found (expired).
 */
const CANCEL = `${PRELUDE}
local id, reason, ttl, grant = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local function count()
  if reason == 'timeout' then redis.call('HINCRBY', meta, 'timed_out', 1)
  elseif reason == 'closed' then redis.call('HINCRBY', meta, 'rejected', 1) end
end
reap()
if redis.call('ZREM', queue, id) == 1 then
  redis.call('ZREM', qexp, id)
  count()
  promote(grant, ttl)
  return 0
end
if redis.call('ZSCORE', leases, id) then
  if reason == 'timeout' then return 1 end
  redis.call('ZREM', leases, id)
  redis.call('HINCRBY', meta, 'admitted', -1)
  count()
  promote(grant, ttl)
  return 2
end
count()
return -1
`;

/**
 * Fallback for lost grant messages: make progress, then report on this process's waiters.
 * ARGV: ttlMs, grantPrefix, ids...  Returns per id: 1 granted, 0 still queued, -1 gone.
 */
const POLL = `${PRELUDE}
local ttl, grant = tonumber(ARGV[1]), ARGV[2]
reap()
promote(grant, ttl)
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', leases, id) then
    redis.call('ZADD', leases, 'XX', now + ttl, id)
    out[#out + 1] = 1
  elseif redis.call('ZSCORE', queue, id) then
    redis.call('ZADD', qexp, 'XX', now + ttl, id)
    out[#out + 1] = 0
  else
    out[#out + 1] = -1
  end
end
return out
`;

/**
 * Keep this process's leases, waiters and worker entry alive.
 * ARGV: ttlMs, grantPrefix, processId, leaseCount, leaseIds..., waiterIds...
 * Returns { live workers, capacity or -1, leases Redis had lost (re-added), source or '' }.
 */
const HEARTBEAT = `${PRELUDE}
local ttl, grant, proc, nLeases = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local workers = KEYS[5]
reap()
redis.call('ZREMRANGEBYSCORE', workers, '-inf', now)
redis.call('ZADD', workers, now + ttl, proc)
redis.call('PEXPIRE', workers, ttl * 4)
-- Held slots are recorded even when Redis lost them (expired during a stall, or a restart):
-- the work is running, so it must count.
local missing = 0
for i = 5, 4 + nLeases do
  if redis.call('ZADD', leases, now + ttl, ARGV[i]) == 1 then missing = missing + 1 end
end
-- Waiters, and grants their process has not heard of yet.
for i = 5 + nLeases, #ARGV do
  redis.call('ZADD', qexp, 'XX', now + ttl, ARGV[i])
  redis.call('ZADD', leases, 'XX', now + ttl, ARGV[i])
end
promote(grant, ttl)
local m = redis.call('HMGET', meta, 'capacity', 'source')
return { redis.call('ZCARD', workers), tonumber(m[1] or '-1'), missing, m[2] or '' }
`;

/**
 * ARGV: capacity ('' = unknown), source, onlyIfAbsent ('1' | '0'), ttlMs, grantPrefix.
 * Returns 1 written, 0 kept (onlyIfAbsent and a value exists).
 */
const SET_CAPACITY = `${PRELUDE}
local ttl, grant = tonumber(ARGV[4]), ARGV[5]
reap()
if ARGV[3] == '1' and redis.call('HEXISTS', meta, 'source') == 1 then
  promote(grant, ttl)
  return 0
end
if ARGV[1] == '' then
  redis.call('HDEL', meta, 'capacity')
else
  redis.call('HSET', meta, 'capacity', ARGV[1])
end
redis.call('HSET', meta, 'source', ARGV[2])
promote(grant, ttl)
return 1
`;

/**
 * Back from an outage: record the slots this process holds (Redis may have lost them), drop
 * ids it abandoned, add the counts it kept locally, and register the worker.
 * ARGV: ttlMs, grantPrefix, processId, dAdmitted, dRejected, dTimedOut, adoptCount,
 *       adoptIds..., orphanIds...
 * Returns { live workers, capacity or -1, source or '' }.
 */
const ADOPT = `${PRELUDE}
local ttl, grant, proc, nAdopt = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[7])
local workers = KEYS[5]
reap()
redis.call('ZREMRANGEBYSCORE', workers, '-inf', now)
redis.call('ZADD', workers, now + ttl, proc)
redis.call('PEXPIRE', workers, ttl * 4)
for i = 8, 7 + nAdopt do
  redis.call('ZREM', queue, ARGV[i])
  redis.call('ZREM', qexp, ARGV[i])
  redis.call('ZADD', leases, now + ttl, ARGV[i])
end
for i = 8 + nAdopt, #ARGV do
  redis.call('ZREM', queue, ARGV[i])
  redis.call('ZREM', qexp, ARGV[i])
  redis.call('ZREM', leases, ARGV[i])
end
if ARGV[4] ~= '0' then redis.call('HINCRBY', meta, 'admitted', ARGV[4]) end
if ARGV[5] ~= '0' then redis.call('HINCRBY', meta, 'rejected', ARGV[5]) end
if ARGV[6] ~= '0' then redis.call('HINCRBY', meta, 'timed_out', ARGV[6]) end
promote(grant, ttl)
local m = redis.call('HMGET', meta, 'capacity', 'source')
return { redis.call('ZCARD', workers), tonumber(m[1] or '-1'), m[2] or '' }
`;

/** Leave at shutdown. ARGV: ttlMs, grantPrefix, processId, ids... */
const LEAVE = `${PRELUDE}
redis.call('ZREM', KEYS[5], ARGV[3])
for i = 4, #ARGV do
  redis.call('ZREM', leases, ARGV[i])
  redis.call('ZREM', queue, ARGV[i])
  redis.call('ZREM', qexp, ARGV[i])
end
reap()
promote(ARGV[2], tonumber(ARGV[1]))
return 1
`;

/**
 * ARGV: ttlMs, grantPrefix.
 * Returns { capacity or -1, source or '', active, queued, admitted, rejected, timed_out }.
 */
const SNAPSHOT = `${PRELUDE}
reap()
promote(ARGV[2], tonumber(ARGV[1]))
local m = redis.call('HMGET', meta, 'capacity', 'source', 'admitted', 'rejected', 'timed_out')
return { tonumber(m[1] or '-1'), m[2] or '', redis.call('ZCARD', leases), redis.call('ZCARD', queue),
  tonumber(m[3] or '0'), tonumber(m[4] or '0'), tonumber(m[5] or '0') }
`;

/** KEYS[1] lock; ARGV: token, ttlMs. Returns 1 while the caller still owns the lock. */
const LOCK_RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS[1] lock; ARGV: token. Deletes the lock only for its owner. */
const LOCK_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Names under which the scripts are defined on the client (`defineCommand`: EVALSHA, NOSCRIPT-safe). */
export const SCRIPTS = {
  balancerAcquire: { numberOfKeys: 4, lua: ACQUIRE },
  balancerRelease: { numberOfKeys: 4, lua: RELEASE },
  balancerCancel: { numberOfKeys: 4, lua: CANCEL },
  balancerPoll: { numberOfKeys: 4, lua: POLL },
  balancerHeartbeat: { numberOfKeys: 5, lua: HEARTBEAT },
  balancerSetCapacity: { numberOfKeys: 4, lua: SET_CAPACITY },
  balancerAdopt: { numberOfKeys: 5, lua: ADOPT },
  balancerLeave: { numberOfKeys: 5, lua: LEAVE },
  balancerSnapshot: { numberOfKeys: 4, lua: SNAPSHOT },
  balancerLockRenew: { numberOfKeys: 1, lua: LOCK_RENEW },
  balancerLockRelease: { numberOfKeys: 1, lua: LOCK_RELEASE },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
