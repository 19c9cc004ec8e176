import { TOP_TENANTS } from '../../queue-order';

/**
 * Read-only: counts live leases and waiters without dropping or granting anything, and reads
 * the per-tenant top lists and the queueTargetMs state (shedding is decided at read time).
 * KEYS as every pool script. Returns { capacity or -1, source or '', active, queued, admitted,
 * rejected, timed_out, shed, queued top or nil, admitted top or nil, shedding (1/0)
 * or nil, drain ms or nil, lost leases, units or nil }: units ({ in flight, queued, admitted })
 * only once a request named a cost (see units.ts); the top lists (tenant, count, tenant, count...: named tenants,
 * largest first, ties by name) are nil until a request named a tenant, shedding until a
 * request passed a target. Per-tenant queued counts may include dead waiters not reaped yet.
 */
export const SNAPSHOT = `
local meta, leases, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tqueued, tadmitted = KEYS[7], KEYS[9]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('HMGET', meta, 'capacity', 'source', 'admitted', 'rejected', 'timed_out',
  'shed', 'tenants', 'target_interval', 'above_since', 'drain_ms', 'lost', 'costed', 'lx', 'qx',
  'units_admitted')
local queued = redis.call('ZCARD', queue) - redis.call('ZCOUNT', qexp, '-inf', now)

-- Scores are minus the counts: ZRANGE lists the largest first, ties by name. One more row than
-- needed, as one of them may be the default tenant ('').
local function top(key)
  local out = {}
  local rows = redis.call('ZRANGE', key, 0, ${TOP_TENANTS}, 'WITHSCORES')
  for i = 1, #rows, 2 do
    if rows[i] ~= '' and #out < ${2 * TOP_TENANTS} then
      out[#out + 1] = rows[i]
      out[#out + 1] = -tonumber(rows[i + 1])
    end
  end
  return out
end

local reply = { tonumber(m[1] or '-1'), m[2] or '', redis.call('ZCOUNT', leases, '(' .. now, '+inf'),
  math.max(0, queued), tonumber(m[3] or '0'), tonumber(m[4] or '0'), tonumber(m[5] or '0'),
  tonumber(m[6] or '0'), false, false, false, false, tonumber(m[11] or '0'), false }
if m[7] then
  reply[9] = top(tqueued)
  reply[10] = top(tadmitted)
end
if m[12] then
  -- Live leases plus the extra units of every lease (expired ones not reaped yet included).
  reply[14] = { reply[3] + tonumber(m[13] or '0'),
    math.max(0, redis.call('ZCARD', queue) + tonumber(m[14] or '0')),
    tonumber(m[15] or m[5] or '0') }
end
if m[8] then
  reply[11] = (m[9] and now - tonumber(m[9]) >= tonumber(m[8])) and 1 or 0
  reply[12] = m[10]
end
return reply
`;
