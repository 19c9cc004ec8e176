import { QUEUE_TARGET } from './queue-target';
import { TENANT_TABLES } from './tenant-tables';

/*
 * The common head of every script that works on one pool. Each script runs atomically on the
 * server, so "check the count, then take a slot" can never overshoot. Every script that writes
 * first drops expired leases and dead waiters, then hands free slots to the first waiters in
 * queue order (`promote`).
 *
 * KEYS, all sharing the hash tag `{pool}` (one Cluster slot), in the order of `POOL_SCRIPT_KEYS`:
 *   1 meta     hash: capacity, source, admitted, rejected, timed_out, shed, epoch, hold_until,
 *              round, tenants (a request named a tenant), and the queueTargetMs fields
 *   2 leases   zset: lease id -> expiry (ms, Redis clock)
 *   3 queue    zset: waiter id -> queue key (queue-order.ts: round - priority x aging); equal
 *              keys in member order, which is arrival order within a process (ids are
 *              `<processId>:<fixed-width counter>`)
 *   4 qexp     zset: waiter id -> liveness expiry (ms); renewed while its process lives
 *   5 workers  zset: process id -> expiry (ms); the live worker count
 *   6-9        the per-waiter and per-tenant tables (see tenant-tables.ts)
 *
 * Every pool script takes the same first three arguments: ARGV[1] ttlMs (lease TTL), ARGV[2]
 * claimMs (how long a grant lives until its process claims it), ARGV[3] grantPrefix. A grant
 * is announced on the channel `<grantPrefix><processId>` with the id as the message. Times come
 * from Redis (`TIME`), never from the hosts' clocks.
 *
 * `epoch` is a random token written when the pool's meta is created. A worker that knew an
 * epoch and finds none has met a Redis that lost its data (restart without persistence): the
 * script then sets `hold_until` (now + holdMs), and nothing is granted before it, so workers
 * still admitting on the slots they held before the loss have finished their fallback window.
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

const GRANTS = `
local function reap()
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  local dead = redis.call('ZRANGEBYSCORE', qexp, '-inf', now)
  for i = 1, #dead do unqueue(dead[i]) end
  if #dead > 0 then emptied() end
end

local function holding()
  local h = redis.call('HGET', meta, 'hold_until')
  return h and now < tonumber(h)
end

-- Grant free slots to the first waiters and tell their processes. A grant lives claimMs
-- until its process claims it (a dead or cut-off waiter does not hold a slot for longer).
local function promote()
  if redis.call('ZCARD', queue) == 0 or holding() then return end
  local cap = redis.call('HGET', meta, 'capacity')
  if not cap then return end
  local free = tonumber(cap) - redis.call('ZCARD', leases)
  if free <= 0 then return end
  while free > 0 do
    local head = redis.call('ZRANGE', queue, 0, 0)
    if #head == 0 then break end
    local id = head[1]
    local _, round, at, tenant = unqueue(id)
    if round then
      if round > (tonumber(redis.call('HGET', meta, 'round')) or 0) then
        redis.call('HSET', meta, 'round', round)
      end
      sample(now - at)
      countAdmitted(tenant)
    end
    redis.call('ZADD', leases, now + claim, id)
    redis.call('HINCRBY', meta, 'admitted', 1)
    local sep = string.find(id, ':', 1, true)
    if sep then redis.call('PUBLISH', grant .. string.sub(id, 1, sep - 1), id) end
    free = free - 1
  end
  emptied()
end
`;

const SETTINGS = `
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

export const PRELUDE = [HEAD, TENANT_TABLES, QUEUE_TARGET, GRANTS, SETTINGS].join('');
