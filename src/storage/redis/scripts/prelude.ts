import { QUEUE_TARGET } from './queue-target';
import { TENANT_TABLES } from './tenant-tables';
import { UNITS } from './units';

/*
 * The common head of every script that works on one pool. Each script runs atomically on the
 * server, so "check the count, then take a slot" can never overshoot. Every script that writes
 * first drops expired leases and dead waiters, then hands free slots to the first waiters in
 * queue order (`promote`).
 *
 * KEYS, all sharing the hash tag `{pool}` (one Cluster slot), in the order of `POOL_SCRIPT_KEYS`:
 *   1 meta     hash: capacity, source, admitted, rejected, timed_out, shed, lost, epoch,
 *              replid (the server that wrote it), hold_until, round, tenants (a request named a tenant), and the queueTargetMs fields
 *   2 leases   zset: lease id -> expiry (ms, Redis clock)
 *   3 queue    zset: waiter id -> queue key (queue-order.ts: round - priority x aging); equal
 *              keys in member order, which is arrival order within a process (ids are
 *              `<processId>:<fixed-width counter>`)
 *   4 qexp     zset: waiter id -> liveness expiry (ms); renewed while its process lives
 *   5 workers  zset: process id -> expiry (ms); the live worker count
 *   6-9        the per-waiter and per-tenant tables (see tenant-tables.ts)
 *   10 costs   hash: units of the waiters and leases that hold other than 1 (see units.ts)
 *
 * Every pool script takes the same first three arguments: ARGV[1] ttlMs (lease TTL), ARGV[2]
 * claimMs (how long a grant lives until its process claims it), ARGV[3] grantPrefix. A grant
 * is announced on the channel `<grantPrefix><processId>` with the id as the message. Times come
 * from Redis (`TIME`), never from the hosts' clocks.
 *
 * `epoch` is a token written when the pool's meta is created, and again whenever a script finds
 * that the pool's state may have gone back in time. Any such loss sets `hold_until`, and nothing
 * is granted before it (see `hold()` below), whoever writes first. During a hold, a worker's
 * heartbeat may record again the slots it still holds (it only sends the ones whose lease it
 * can still prove on its own clock); after it, a lease that is missing is lost, never re-added.
 */

const HEAD = `
if redis.replicate_commands then redis.replicate_commands() end
local meta, leases, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local waiters, tqueued, trounds, tadmitted = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local ttl, claim, grant = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A number as Redis should store it: every digit (keys and drain averages stay exact).
local function num(x) return string.format('%.17g', x) end
`;

const SERVER = `
local function hold(untilMs)
  local h = tonumber(redis.call('HGET', meta, 'hold_until')) or 0
  if untilMs > h then redis.call('HSET', meta, 'hold_until', untilMs) end
end

-- The replication id of this server: new when Redis starts (even from an RDB/AOF file) and when
-- a replica is promoted.
local function replid()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
end

-- Pool state written by another server (a promoted replica, a restore from a file): the writes
-- the old server accepted last may be missing (asynchronous replication), so leases granted and
-- renewed there may be gone here. Hold for one lease TTL: by then every holder has renewed its
-- slots here or has seen its lease pass its deadline (it stops). A new epoch tells the workers.
local function sameServer()
  local m = redis.call('HMGET', meta, 'epoch', 'replid')
  if not m[1] then return end
  local rid = replid()
  if m[2] == rid then return end
  redis.call('HSET', meta, 'replid', rid)
  if not m[2] then return end
  hold(now + ttl)
  redis.call('HSET', meta, 'epoch', rid .. '-' .. now)
end
`;

const GRANTS = `
-- First in every script that may grant: a state from another server is held before any grant.
local function reap()
  sameServer()
  expireLeases()
  local dead = redis.call('ZRANGEBYSCORE', qexp, '-inf', now)
  for i = 1, #dead do unqueue(dead[i]) end
  if #dead > 0 then emptied() end
end

local function holding()
  local h = redis.call('HGET', meta, 'hold_until')
  return h and now < tonumber(h)
end

-- Grant free units to the first waiters and tell their processes, strict head-of-line: the
-- head is granted when its units fit (units.ts), and nobody behind it before it. A grant lives
-- claimMs until its process claims it (a dead or cut-off waiter does not hold units for longer).
local function promote()
  if redis.call('ZCARD', queue) == 0 or holding() then return end
  local cap = tonumber(redis.call('HGET', meta, 'capacity'))
  if not cap then return end
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)
    if #head == 0 then break end
    local id = head[1]
    local u = unitsOf(id)
    if not fits(u, cap) then break end
    local _, round, at, tenant = unqueue(id)
    if round then
      if round > (tonumber(redis.call('HGET', meta, 'round')) or 0) then
        redis.call('HSET', meta, 'round', round)
      end
      sample(now - at)
      countAdmitted(tenant)
    end
    redis.call('ZADD', leases, now + claim, id)
    leaseUnits(id, u)
    redis.call('HINCRBY', meta, 'admitted', 1)
    local sep = string.find(id, ':', 1, true)
    if sep then redis.call('PUBLISH', grant .. string.sub(id, 1, sep - 1), id) end
  end
  emptied()
end
`;

const SETTINGS = `
-- Meta of the pool, created when missing (first worker, or a Redis that lost its data).
-- known: the epoch the caller saw before ('' = none); fresh: the epoch to write when missing;
-- capacity/source: what the caller knows ('' source = nothing), written when missing.
-- No state may be a loss whoever finds it: a Redis that started less than youngMs (the lease
-- TTL) ago may have replaced one whose leases still run, so nothing is granted before its start
-- + youngMs. A caller that knew an epoch met a loss for sure: nothing before now + ttl.
local function ensure(known, fresh, youngMs, capacity, source)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then return epoch end
  redis.call('HSET', meta, 'epoch', fresh, 'replid', replid())
  if youngMs > 0 then
    local up = string.match(redis.call('INFO', 'server'), 'uptime_in_seconds:(%d+)')
    -- uptime_in_seconds is rounded down: the start is at most up seconds ago.
    hold(now - (tonumber(up) or 0) * 1000 + youngMs)
  end
  if known ~= '' then hold(now + ttl) end
  if source ~= '' and redis.call('HEXISTS', meta, 'source') == 0 then
    if capacity ~= '' then redis.call('HSET', meta, 'capacity', capacity) end
    redis.call('HSET', meta, 'source', source)
  end
  return fresh
end

-- Renew the leases a process holds (ids from ARGV[from..to]; a lease of other than 1 unit is
-- sent as 'id#units'). A lease Redis still has is renewed; a missing one is recorded again, with
-- its units, only during a hold (nothing was granted since the loss, and its holder can still
-- prove it); else it expired here and its slot may be someone else's: it is lost, returned to
-- the holder, never re-added.
local function renew(from, to)
  local lost = {}
  local open = holding()
  for i = from, to do
    local id, u = string.match(ARGV[i], '^(.-)#(%d+)$')
    if not id then id, u = ARGV[i], '1' end
    if redis.call('ZSCORE', leases, id) then
      redis.call('ZADD', leases, now + ttl, id)
    elseif open then
      redis.call('ZADD', leases, now + ttl, id)
      leaseUnits(id, tonumber(u))
    else
      lost[#lost + 1] = id
    end
  end
  return lost
end

local function register(workers, proc)
  redis.call('ZREMRANGEBYSCORE', workers, '-inf', now)
  redis.call('ZADD', workers, now + ttl, proc)
  redis.call('PEXPIRE', workers, ttl * 4)
  return redis.call('ZCARD', workers)
end
`;

export const PRELUDE = [HEAD, UNITS, TENANT_TABLES, QUEUE_TARGET, SERVER, GRANTS, SETTINGS].join(
  '',
);
