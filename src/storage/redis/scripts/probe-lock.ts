/** KEYS[1] lock; ARGV: token, ttlMs. Returns 1 while the caller still owns the lock. */
export const LOCK_RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS[1] lock; ARGV: token. Deletes the lock only for its owner. */
export const LOCK_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
