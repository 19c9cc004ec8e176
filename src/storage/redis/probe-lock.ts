import { randomUUID } from 'node:crypto';
import type {
  ProbeLock,
  ProbeTokenEntry,
  PublishedProbeToken,
  StoredProbeResult,
} from '../capacity-store.interface';
import { message, type CommandRunner } from './command-runner';
import type { PoolKeys } from './keys';

/**
 * Probe results and the probe lock of every pool, shared through Redis. A result saved while
 * Redis is unreachable is kept here and written by `flush()` when the store is back.
 */
export class RedisProbeLocks {
  private readonly results = new Map<
    string,
    { value: StoredProbeResult | null; pending: boolean }
  >();

  constructor(
    private readonly commands: CommandRunner,
    /** Told of every failed command (the store falls back on it). */
    private readonly onError: (err: unknown) => void,
    private readonly warn: (text: string) => void,
  ) {}

  async save(pool: string, keys: PoolKeys, result: StoredProbeResult): Promise<void> {
    const entry = { value: result, pending: true };
    this.results.set(pool, entry);
    try {
      await this.commands.call((c) => c.set(keys.probe, JSON.stringify(result)));
      entry.pending = false;
    } catch (err) {
      this.onError(err);
      this.warn(`probe result of ${pool} kept locally until Redis is reachable (${message(err)})`);
    }
  }

  async get(pool: string, keys: PoolKeys): Promise<StoredProbeResult | null> {
    const known = this.results.get(pool);
    // Measured here while Redis was down: ours is the newest, written on recovery.
    if (known?.pending) return known.value;
    try {
      const raw = await this.commands.call((c) => c.get(keys.probe));
      const value = raw ? (JSON.parse(raw) as StoredProbeResult) : null;
      this.results.set(pool, { value, pending: false });
      return value;
    } catch (err) {
      this.onError(err);
      if (known) return known.value;
      throw new Error(`probe result of ${pool} unavailable: Redis unreachable (${message(err)})`);
    }
  }

  /** Write the results saved while Redis was unreachable. Throws when Redis fails again. */
  async flush(pool: string, keys: PoolKeys): Promise<void> {
    const entry = this.results.get(pool);
    if (!entry?.pending || !entry.value) return;
    await this.commands.call((c) => c.set(keys.probe, JSON.stringify(entry.value)));
    entry.pending = false;
  }

  /**
   * `null` also while Redis is unreachable: nobody can know whether another worker probes, so
   * this one waits (its caller retries) rather than measuring alongside it.
   */
  async tryLock(keys: PoolKeys, ttlMs: number): Promise<ProbeLock | null> {
    const token = randomUUID();
    const ttl = Math.max(1, Math.round(ttlMs));
    let ok: string | null;
    try {
      ok = await this.commands.call((c) => c.set(keys.lock, token, 'PX', ttl, 'NX'));
    } catch (err) {
      this.onError(err);
      return null;
    }
    if (ok !== 'OK') return null;
    return {
      renew: async () =>
        (await this.commands.script<number>('balancerLockRenew', [keys.lock], [token, ttl])) === 1,
      release: async () => {
        try {
          await this.commands.script('balancerLockRelease', [keys.lock], [token]);
        } catch {
          // Unreachable: the lock expires by itself after its TTL.
        }
      },
    };
  }

  /** SET with PX (replaces a dead prober's token); renew and withdraw only for this token. */
  async publishToken(keys: PoolKeys, token: string, ttlMs: number): Promise<PublishedProbeToken> {
    const ttl = Math.max(1, Math.round(ttlMs));
    await this.commands.call((c) => c.set(keys.probeToken, token, 'PX', ttl));
    return {
      renew: async () =>
        (await this.commands.script<number>(
          'balancerLockRenew',
          [keys.probeToken],
          [token, ttl],
        )) === 1,
      withdraw: async () => {
        // Unreachable: the token expires by itself after its TTL.
        await this.commands
          .script('balancerLockRelease', [keys.probeToken], [token])
          .catch(() => undefined);
      },
    };
  }

  /** One round trip (GET + PTTL in a MULTI); throws while Redis is unreachable. */
  async tokens(keys: PoolKeys): Promise<ProbeTokenEntry[]> {
    const replies = await this.commands.call((c) =>
      c.multi().get(keys.probeToken).pttl(keys.probeToken).exec(),
    );
    const token = replies?.[0]?.[1];
    const ttlMs = Number(replies?.[1]?.[1]);
    return typeof token === 'string' && ttlMs > 0 ? [{ token, ttlMs }] : [];
  }
}
