import { PRELUDE } from './prelude';

/** Replies of ACQUIRE: its first element. */
export const ACQUIRE_CODES = {
  granted: 1,
  queued: 0,
  queueFull: -1,
  tenantQueueFull: -2,
  shed: -3,
  queueCostFull: -4,
} as const;

/**
 * ARGV[4..]: id, maxQueue, tenant ('' = the default tenant), priority, priorityAging,
 * maxQueuePerTenant (0 = none), queueTargetMs ('' = none), its interval (ms), cost ('' = not
 * costed: 1 unit), maxQueueCost (0 = none).
 * Returns { code, retryAfterS } (see ACQUIRE_CODES; retryAfterS for shed, else 0).
 * Checks in order: a lease at once (its units fit, nobody waiting), maxQueue, maxQueueCost,
 * maxQueuePerTenant, queueTargetMs; else the request queues with its round, key and units.
 */
export const ACQUIRE = `${PRELUDE}
local id, maxQueue, tenant = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local cost, maxCost = tonumber(ARGV[12]) or 1, tonumber(ARGV[13]) or 0
reap()
promote()
if tenant ~= '' then redis.call('HSET', meta, 'tenants', 1) end
if ARGV[12] ~= '' or maxCost > 0 then redis.call('HSET', meta, 'costed', 1) end
local m = redis.call('HMGET', meta, 'capacity', 'hold_until')
local queued = redis.call('ZCARD', queue)
local open = not (m[2] and now < tonumber(m[2]))
if open and queued == 0 and fits(cost, tonumber(m[1])) then
  redis.call('ZADD', leases, now + ttl, id)
  leaseUnits(id, cost)
  redis.call('HINCRBY', meta, 'admitted', 1)
  countAdmitted(tenant)
  return { ${ACQUIRE_CODES.granted}, 0 }
end
if queued >= maxQueue then
  redis.call('HINCRBY', meta, 'rejected', 1)
  return { ${ACQUIRE_CODES.queueFull}, 0 }
end
if maxCost > 0 and queuedUnits() + cost > maxCost then
  redis.call('HINCRBY', meta, 'rejected', 1)
  return { ${ACQUIRE_CODES.queueCostFull}, 0 }
end
local function refuse(code, retryAfter)
  redis.call('HINCRBY', meta, 'rejected', 1)
  redis.call('HINCRBY', meta, 'shed', 1)
  return { code, retryAfter }
end
local perTenant = tonumber(ARGV[9])
if perTenant > 0 and -(tonumber(redis.call('ZSCORE', tqueued, tenant)) or 0) >= perTenant then
  return refuse(${ACQUIRE_CODES.tenantQueueFull}, 0)
end
local round = roundFor(tenant)
local key = round - tonumber(ARGV[7]) * tonumber(ARGV[8])
if ARGV[10] ~= '' then
  local retryAfter = shedRetryAfter(tonumber(ARGV[10]), tonumber(ARGV[11]), key, queued)
  if retryAfter then return refuse(${ACQUIRE_CODES.shed}, retryAfter) end
end
enqueue(id, tenant, round, key)
queueUnits(id, cost)
return { ${ACQUIRE_CODES.queued}, 0 }
`;

/** ARGV[4..]: ids. Returns how many of them were held. */
export const RELEASE = `${PRELUDE}
local n = 0
for i = 4, #ARGV do n = n + unlease(ARGV[i]) end
reap()
promote()
return n
`;

/**
 * The process heard of its grant: from now on the lease lives ttlMs. ARGV[4]: id.
 * Returns 1 claimed, 0 the grant is gone (its claim window passed, e.g. the process stalled):
 * the caller queues again rather than run on a slot that may be someone else's now.
 */
export const CLAIM = `${PRELUDE}
sameServer()
local exp = redis.call('ZSCORE', leases, ARGV[4])
if exp and tonumber(exp) > now then
  redis.call('ZADD', leases, now + ttl, ARGV[4])
  return 1
end
return 0
`;

/**
 * A waiter gives up (reason timeout | aborted | closed).
 * ARGV[4..]: id, reason, tenant ('' = default).
 * Returns 0 removed from the queue, 1 already granted and kept (timeout only: the grant came
 * first; the lease is claimed), 2 already granted and given back, -1 not found (expired).
 */
export const CANCEL = `${PRELUDE}
local id, reason, tenant = ARGV[4], ARGV[5], ARGV[6]
local function count()
  if reason == 'timeout' then redis.call('HINCRBY', meta, 'timed_out', 1)
  elseif reason == 'closed' then redis.call('HINCRBY', meta, 'rejected', 1) end
end
reap()
if unqueue(id) then
  count()
  emptied()
  promote()
  return 0
end
if redis.call('ZSCORE', leases, id) then
  if reason == 'timeout' then
    redis.call('ZADD', leases, now + ttl, id)
    return 1
  end
  redis.call('HINCRBY', meta, 'units_admitted', -unitsOf(id))
  unlease(id)
  redis.call('HINCRBY', meta, 'admitted', -1)
  uncountAdmitted(tenant)
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
export const POLL = `${PRELUDE}
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
 * A running request corrects its units (`Lease.resize`). ARGV[4..]: id, units (a positive
 * integer). Fewer units free room at once (waiters that fit now are granted); more are taken at
 * once, never refused (the work already runs). Returns 1 corrected, 0 the lease is gone.
 */
export const RESIZE = `${PRELUDE}
local id, u = ARGV[4], tonumber(ARGV[5])
reap()
if not redis.call('ZSCORE', leases, id) then return 0 end
local was = unitsOf(id)
redis.call('HSET', meta, 'costed', 1)
if u == 1 then redis.call('HDEL', costs, id) else redis.call('HSET', costs, id, u) end
bump('lx', u - was)
bump('units_admitted', u - was)
promote()
return 1
`;
