import { POOL_SCRIPT_KEYS } from '../keys';
import { ADOPT, HEARTBEAT, LEAVE, SET_CAPACITY } from './lifecycle';
import { LOCK_RELEASE, LOCK_RENEW } from './probe-lock';
import { ACQUIRE, CANCEL, CLAIM, POLL, RELEASE, RESIZE } from './queue';
import { SNAPSHOT } from './snapshot';

export { ACQUIRE_CODES } from './queue';

/** Every pool script receives the pool's keys of `POOL_SCRIPT_KEYS` (see `prelude.ts`). */
const POOL = POOL_SCRIPT_KEYS.length;

/**
 * The Lua scripts of the Redis store, by the name under which they are defined on the client
 * (`defineCommand`: EVALSHA, NOSCRIPT-safe). Each decision is one script.
 */
export const SCRIPTS = {
  balancerAcquire: { numberOfKeys: POOL, lua: ACQUIRE },
  balancerRelease: { numberOfKeys: POOL, lua: RELEASE },
  balancerClaim: { numberOfKeys: POOL, lua: CLAIM },
  balancerResize: { numberOfKeys: POOL, lua: RESIZE },
  balancerCancel: { numberOfKeys: POOL, lua: CANCEL },
  balancerPoll: { numberOfKeys: POOL, lua: POLL },
  balancerHeartbeat: { numberOfKeys: POOL, lua: HEARTBEAT },
  balancerSetCapacity: { numberOfKeys: POOL, lua: SET_CAPACITY },
  balancerAdopt: { numberOfKeys: POOL, lua: ADOPT },
  balancerLeave: { numberOfKeys: POOL, lua: LEAVE },
  balancerSnapshot: { numberOfKeys: POOL, lua: SNAPSHOT },
  balancerLockRenew: { numberOfKeys: 1, lua: LOCK_RENEW },
  balancerLockRelease: { numberOfKeys: 1, lua: LOCK_RELEASE },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
