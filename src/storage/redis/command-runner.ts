import type { RedisClient } from './connection';
import { SCRIPTS, type ScriptName } from './scripts';

/** Wait for `promise`, at most `ms` (the timer does not outlive it). */
export async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs the store's commands on one connection. Every command fails fast: at once while the
 * connection is not ready, and after `timeoutMs` without an answer (so a link that hangs counts
 * as unreachable, not as slow). Commands in flight are tracked so `close()` can wait them out.
 */
export class CommandRunner {
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly client: RedisClient,
    private readonly timeoutMs: number,
  ) {
    for (const [name, def] of Object.entries(SCRIPTS)) client.defineCommand(name, def);
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** One of the store's Lua scripts (EVALSHA, reloaded after NOSCRIPT). */
  script<T>(
    name: ScriptName,
    keys: readonly string[],
    args: ReadonlyArray<string | number>,
  ): Promise<T> {
    return this.call((client) => {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => Promise<T>>)[name];
      return fn.call(client, ...keys, ...args);
    });
  }

  /** A plain command, with the same fail-fast rules as the scripts. */
  call<T>(fn: (client: RedisClient) => Promise<T>): Promise<T> {
    if (!this.ready) return Promise.reject(new Error(`Redis connection is ${this.client.status}`));
    return this.track(this.timed(fn(this.client)));
  }

  /** Settles when nothing is in flight any more (including work started meanwhile). */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    const done = (): void => void this.inflight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  private timed<T>(promise: Promise<T>): Promise<T> {
    const ms = this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}
