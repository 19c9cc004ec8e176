import { PRELUDE } from './prelude';

/**
 * Keep this process's leases, waiters and worker entry alive.
 * ARGV[4..]: processId, knownEpoch, freshEpoch, youngMs (see ensure()), capacity, source,
 *            leaseCount, leaseIds..., waiterIds...
 * Returns { live workers, capacity or -1, lost lease ids, source or '', epoch }: a lost lease
 * expired here (or went with the state) and is not recorded again (see renew()).
 */
export const HEARTBEAT = `${PRELUDE}
local proc, nLeases = ARGV[4], tonumber(ARGV[10])
reap()
local epoch = ensure(ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9])
local workers = register(KEYS[5], proc)
local lost = renew(11, 10 + nLeases)
-- Waiters, and grants their process has not heard of yet (claimed here).
for i = 11 + nLeases, #ARGV do
  redis.call('ZADD', qexp, 'XX', now + ttl, ARGV[i])
  redis.call('ZADD', leases, 'XX', now + ttl, ARGV[i])
end
promote()
local m = redis.call('HMGET', meta, 'capacity', 'source')
return { workers, tonumber(m[1] or '-1'), lost, m[2] or '', epoch }
`;

/**
 * ARGV[4..]: capacity ('' = unknown), source, knownEpoch, freshEpoch, youngMs.
 * Returns the pool's epoch.
 */
export const SET_CAPACITY = `${PRELUDE}
reap()
local epoch = ensure(ARGV[6], ARGV[7], tonumber(ARGV[8]), '', '')
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
 * Back from an outage, in one step: put back the pool's settings, renew the slots this process
 * still runs (recorded again only during a hold, see renew()), drop the ids it no longer uses
 * (waiters leave the queue and their tenant's count), add the counts it kept locally, and
 * register the worker.
 * ARGV[4..]: processId, knownEpoch, freshEpoch, youngMs, capacity, source, overwrite ('1':
 *            this process set the capacity while cut off), dAdmitted, dRejected, dTimedOut,
 *            dShed, dLost, runCount, runIds..., dropIds...
 * Returns { live workers, capacity or -1, source or '', epoch, lost lease ids }.
 */
export const ADOPT = `${PRELUDE}
local proc, nRun = ARGV[4], tonumber(ARGV[16])
reap()
local epoch = ensure(ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9])
if ARGV[10] == '1' then
  if ARGV[8] == '' then redis.call('HDEL', meta, 'capacity')
  else redis.call('HSET', meta, 'capacity', ARGV[8]) end
  redis.call('HSET', meta, 'source', ARGV[9])
end
local workers = register(KEYS[5], proc)
for i = 17, 16 + nRun do unqueue(string.match(ARGV[i], '^(.-)#%d+$') or ARGV[i]) end
local lost = renew(17, 16 + nRun)
for i = 17 + nRun, #ARGV do
  unqueue(ARGV[i])
  unlease(ARGV[i])
end
emptied()
local deltas = { 'admitted', 'rejected', 'timed_out', 'shed', 'lost' }
for i = 1, #deltas do
  if ARGV[10 + i] ~= '0' then redis.call('HINCRBY', meta, deltas[i], ARGV[10 + i]) end
end
promote()
local m = redis.call('HMGET', meta, 'capacity', 'source')
return { workers, tonumber(m[1] or '-1'), m[2] or '', epoch, lost }
`;

/** Leave at shutdown. ARGV[4..]: processId, ids... */
export const LEAVE = `${PRELUDE}
redis.call('ZREM', KEYS[5], ARGV[4])
for i = 5, #ARGV do
  unlease(ARGV[i])
  unqueue(ARGV[i])
end
emptied()
reap()
promote()
return 1
`;
