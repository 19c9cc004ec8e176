/*
 * Lua scripts of the Redis store. Each runs atomically on the server, so "check the count,
 * then take a slot" can never overshoot. Every script that writes first drops expired leases
 * and dead waiters, then hands free slots to the oldest waiters (`promote`).
 *
 * Keys of one pool (all share the hash tag `{pool}`, so they live in one Cluster slot):
 *   KEYS[1] meta    hash: capacity, source, admitted, rejected, timed_out, seq, epoch, hold_until
 *   KEYS[2] leases  zset: lease id -> expiry (ms, Redis clock)
 *   KEYS[3] queue   zset: waiter id -> arrival number (global FIFO order)
 *   KEYS[4] qexp    zset: waiter id -> liveness expiry (ms); renewed while its process lives
 *   KEYS[5] workers zset: process id -> expiry (ms); the live worker count (some scripts only)
 *
 * Every script takes the same first three arguments: ARGV[1] ttlMs (lease TTL), ARGV[2]
 * claimMs (how long a grant lives until its process claims it), ARGV[3] grantPrefix. Ids are
 * `<processId>:<n>`; a grant is announced on the channel `<grantPrefix><processId>` with the id
 * as the message. Times come from Redis (`TIME`), never from the hosts' clocks.
 *
 * `epoch` is a random token written when the pool's meta is created. A worker that knew an
 * epoch and finds none has met a Redis that lost its data (restart without persistence): the
 * script then sets `hold_until` (now + holdMs), and nothing is granted before it, so workers
 * still admitting on the slots they held before the loss have finished their fallback window.
 */

const PRELUDE = `
if redis.replicate_commands then redis.replicate_commands() end
local meta, leases, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ttl, claim, grant = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
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

local function holding()
  local h = redis.call('HGET', meta, 'hold_until')
  return h and now < tonumber(h)
end

-- Grant free slots to the oldest waiters and tell their processes. A grant lives claimMs
-- until its process claims it (a dead or cut-off waiter does not hold a slot for longer).
local function promote()
  if redis.call('ZCARD', queue) == 0 or holding() then return end
  local cap = redis.call('HGET', meta, 'capacity')
  if not cap then return end
  local free = tonumber(cap) - redis.call('ZCARD', leases)
  while free > 0 do
    local head = redis.call('ZPOPMIN', queue)
    if #head == 0 then return end
    local id = head[1]
    redis.call('ZREM', qexp, id)
    redis.call('ZADD', leases, now + claim, id)
    redis.call('HINCRBY', meta, 'admitted', 1)
    local sep = string.find(id, ':', 1, true)
    if sep then redis.call('PUBLISH', grant .. string.sub(id, 1, sep - 1), id) end
    free = free - 1
  end
end

-- Meta of the pool, created when missing (first worker, or a Redis that lost its data).
-- known: the epoch the caller saw before ('' = none); fresh: the epoch to write when missing;
-- capacity/source: what the caller knows ('' source = nothing), written when missing.
local function ensure(known, fresh, holdMs, capacity, source)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then return epoch end
  redis.call('HSET', meta, 'epoch', fresh)
  if known ~= '' then redis.call('HSET', meta, 'hold_until', now + holdMs) end
  if source ~= '' and redis.call('HEXISTS', meta, 'source') == 0 then
    if capacity ~= '' then redis.call('HSET', meta, 'capacity', capacity) end
    redis.call('HSET', meta, 'source', source)
  end
  return fresh
end

local function register(workers, proc)
  redis.call('ZREMRANGEBYSCORE', workers, '-inf', now)
  redis.call('ZADD', workers, now + ttl, proc)
  redis.call('PEXPIRE', workers, ttl * 4)
  return redis.call('ZCARD', workers)
end
`;

/**
 * ARGV[4..]: id, maxQueue. Returns 1 granted, 0 queued, -1 queue full.
 */
const ACQUIRE = `${PRELUDE}
local id, maxQueue = ARGV[4], tonumber(ARGV[5])
reap()
promote()
local m = redis.call('HMGET', meta, 'capacity', 'hold_until')
local queued = redis.call('ZCARD', queue)
local open = not (m[2] and now < tonumber(m[2]))
if m[1] and open and queued == 0 and redis.call('ZCARD', leases) < tonumber(m[1]) then
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

/** ARGV[4..]: ids. Returns how many of them were held. */
const RELEASE = `${PRELUDE}
local n = 0
for i = 4, #ARGV do n = n + redis.call('ZREM', leases, ARGV[i]) end
reap()
promote()
return n
`;

/**
 * The process heard of its grant: from now on the lease lives ttlMs. ARGV[4]: id.
 * Returns 1 claimed, 0 the grant is gone (its claim window passed, e.g. the process stalled):
 * the caller queues again rather than run on a slot that may be someone else's now.
 */
const CLAIM = `${PRELUDE}
local exp = redis.call('ZSCORE', leases, ARGV[4])
if exp and tonumber(exp) > now then
  redis.call('ZADD', leases, now + ttl, ARGV[4])
  return 1
end
return 0
`;

/**
 * A waiter gives up (reason timeout | aborted | closed).
 * ARGV[4..]: id, reason.
 * Returns 0 removed from the queue, 1 already granted and kept (timeout only: the grant came
 * first; the lease is claimed), 2 already granted and given back, -1 not found (expired).
 */
const CANCEL = `${PRELUDE}
local id, reason = ARGV[4], ARGV[5]
local function count()
  if reason == 'timeout' then redis.call('HINCRBY', meta, 'timed_out', 1)
  elseif reason == 'closed' then redis.call('HINCRBY', meta, 'rejected', 1) end
end
reap()
if redis.call('ZREM', queue, id) == 1 then
  redis.call('ZREM', qexp, id)
  count()
  promote()
  return 0
end
if redis.call('ZSCORE', leases, id) then
  if reason == 'timeout' then
    redis.call('ZADD', leases, now + ttl, id)
    return 1
  end
  redis.call('ZREM', leases, id)
  redis.call('HINCRBY', meta, 'admitted', -1)
  count()
  promote()
  return 2
end
count()
return -1
`;

/**
 * Fallback for lost grant messages: make progress, then report on this process's waiters
 * (a granted one is claimed). ARGV[4..]: ids. Returns per id: 1 granted, 0 still queued, -1 gone.
 */
const POLL = `${PRELUDE}
reap()
promote()
local out = {}
for i = 4, #ARGV do
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
 * ARGV[4..]: processId, knownEpoch, freshEpoch, holdMs, capacity, source, leaseCount,
 *            leaseIds..., waiterIds...
 * Returns { live workers, capacity or -1, leases Redis had lost (re-added), source or '', epoch }.
 */
const HEARTBEAT = `${PRELUDE}
local proc, nLeases = ARGV[4], tonumber(ARGV[10])
reap()
local epoch = ensure(ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9])
local workers = register(KEYS[5], proc)
-- Held slots are recorded even when Redis lost them (expired during a stall, or a restart):
-- the work is running, so it must count.
local missing = 0
for i = 11, 10 + nLeases do
  if redis.call('ZADD', leases, now + ttl, ARGV[i]) == 1 then missing = missing + 1 end
end
-- Waiters, and grants their process has not heard of yet (claimed here).
for i = 11 + nLeases, #ARGV do
  redis.call('ZADD', qexp, 'XX', now + ttl, ARGV[i])
  redis.call('ZADD', leases, 'XX', now + ttl, ARGV[i])
end
promote()
local m = redis.call('HMGET', meta, 'capacity', 'source')
return { workers, tonumber(m[1] or '-1'), missing, m[2] or '', epoch }
`;

/**
 * ARGV[4..]: capacity ('' = unknown), source, knownEpoch, freshEpoch.
 * Returns the pool's epoch.
 */
const SET_CAPACITY = `${PRELUDE}
reap()
local epoch = ensure(ARGV[6], ARGV[7], ttl, '', '')
if ARGV[4] == '' then
  redis.call('HDEL', meta, 'capacity')
else
  redis.call('HSET', meta, 'capacity', ARGV[4])
end
redis.call('HSET', meta, 'source', ARGV[5])
promote()
return epoch
`;

/**
 * Back from an outage, in one step: put back the pool's settings, record the slots this process
 * still runs (Redis may have lost them), drop the ids it no longer uses, add the counts it kept
 * locally, and register the worker.
 * ARGV[4..]: processId, knownEpoch, freshEpoch, holdMs, capacity, source, overwrite ('1': this
 *            process set the capacity while cut off), dAdmitted, dRejected, dTimedOut,
 *            runCount, runIds..., dropIds...
 * Returns { live workers, capacity or -1, source or '', epoch }.
 */
const ADOPT = `${PRELUDE}
local proc, nRun = ARGV[4], tonumber(ARGV[14])
reap()
local epoch = ensure(ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9])
if ARGV[10] == '1' then
  if ARGV[8] == '' then redis.call('HDEL', meta, 'capacity')
  else redis.call('HSET', meta, 'capacity', ARGV[8]) end
  redis.call('HSET', meta, 'source', ARGV[9])
end
local workers = register(KEYS[5], proc)
for i = 15, 14 + nRun do
  redis.call('ZREM', queue, ARGV[i])
  redis.call('ZREM', qexp, ARGV[i])
  redis.call('ZADD', leases, now + ttl, ARGV[i])
end
for i = 15 + nRun, #ARGV do
  redis.call('ZREM', queue, ARGV[i])
  redis.call('ZREM', qexp, ARGV[i])
  redis.call('ZREM', leases, ARGV[i])
end
if ARGV[11] ~= '0' then redis.call('HINCRBY', meta, 'admitted', ARGV[11]) end
if ARGV[12] ~= '0' then redis.call('HINCRBY', meta, 'rejected', ARGV[12]) end
if ARGV[13] ~= '0' then redis.call('HINCRBY', meta, 'timed_out', ARGV[13]) end
promote()
local m = redis.call('HMGET', meta, 'capacity', 'source')
return { workers, tonumber(m[1] or '-1'), m[2] or '', epoch }
`;

/** Leave at shutdown. ARGV[4..]: processId, ids... */
const LEAVE = `${PRELUDE}
redis.call('ZREM', KEYS[5], ARGV[4])
for i = 5, #ARGV do
  redis.call('ZREM', leases, ARGV[i])
  redis.call('ZREM', queue, ARGV[i])
  redis.call('ZREM', qexp, ARGV[i])
end
reap()
promote()
return 1
`;

/**
 * Read-only: counts live leases and waiters without dropping or granting anything.
 * Returns { capacity or -1, source or '', active, queued, admitted, rejected, timed_out, holding }.
 */
const SNAPSHOT = `
local meta, leases, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('HMGET', meta, 'capacity', 'source', 'admitted', 'rejected', 'timed_out',
  'hold_until')
local queued = redis.call('ZCARD', queue) - redis.call('ZCOUNT', qexp, '-inf', now)
return { tonumber(m[1] or '-1'), m[2] or '', redis.call('ZCOUNT', leases, '(' .. now, '+inf'),
  math.max(0, queued), tonumber(m[3] or '0'), tonumber(m[4] or '0'), tonumber(m[5] or '0'),
  (m[6] and now < tonumber(m[6])) and 1 or 0 }
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
  balancerClaim: { numberOfKeys: 4, lua: CLAIM },
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
