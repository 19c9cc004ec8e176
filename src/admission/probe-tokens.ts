import { Inject, Injectable } from '@nestjs/common';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CapacityStore, type Lease } from '../storage/capacity-store.interface';

/** Random bytes of a token; sent as hex (48 characters). */
const TOKEN_BYTES = 24;
const TOKEN_CHARS = TOKEN_BYTES * 2;
const HEX = /^[0-9a-f]+$/;

/** Longest a token read from the store is trusted before it is read again (at most its TTL). */
export const PROBE_TOKEN_CACHE_MS = 5_000;
/**
 * Shortest gap between two store reads for one pool's tokens in one process: however many
 * unknown tokens arrive (a forged one, a stale one), they cost at most one read per gap.
 */
export const PROBE_TOKEN_REFRESH_MS = 100;

interface CachedToken {
  bytes: Buffer;
  /** `Infinity` for a token this process minted (until it withdraws it). */
  expiresAt: number;
}

/** A token this process minted and published for the probe it runs. */
export interface MintedProbeToken {
  /** The header value. Never logged. */
  readonly value: string;
  /** Keep it alive in the store (with the probe lock); false when it was replaced or is gone. */
  renew(): Promise<boolean>;
  /** Stop accepting it, here and (through the store) everywhere. */
  withdraw(): Promise<void>;
}

/**
 * The tokens that mark the balancer's own requests (`x-balancer-probe`) so they skip admission.
 *
 * - A **probe token** is minted per probe, random, published in the store next to the probe
 *   lock and withdrawn when the probe ends. Every worker sharing the store accepts it for that
 *   pool: with several workers on one port, the probe's requests reach every worker.
 * - A worker checks a header against the tokens it has cached, in constant time, with no I/O.
 *   A well-formed token it does not know makes it read the store once (`verify()`): at most one
 *   read per pool every `PROBE_TOKEN_REFRESH_MS`, shared by every request that waits for it. A
 *   token the store does not hold (forged, stale) is then admitted like any other request.
 * - `local` is a per-process token for this process's own health checks.
 */
@Injectable()
export class ProbeTokens {
  readonly local = randomBytes(TOKEN_BYTES).toString('hex');
  private readonly localBytes = Buffer.from(this.local);
  private readonly cache = new Map<string, CachedToken[]>();
  private readonly minted = new Map<string, CachedToken[]>();
  private readonly refreshing = new Map<string, Promise<void>>();
  private readonly lastRefresh = new Map<string, number>();

  constructor(@Inject(CapacityStore) private readonly store: CapacityStore) {}

  /** Shaped like a token (worth a store read when unknown). */
  static wellFormed(header: unknown): header is string {
    return typeof header === 'string' && header.length === TOKEN_CHARS && HEX.test(header);
  }

  /** Known here right now (cache only, no I/O). */
  accepts(pool: string, header: unknown): boolean {
    if (!ProbeTokens.wellFormed(header)) return false;
    const bytes = Buffer.from(header);
    let ok = timingSafeEqual(bytes, this.localBytes);
    const now = Date.now();
    for (const t of [...(this.minted.get(pool) ?? []), ...(this.cache.get(pool) ?? [])]) {
      // No early exit: every candidate is compared.
      if (t.expiresAt > now && timingSafeEqual(bytes, t.bytes)) ok = true;
    }
    return ok;
  }

  /** Known here, or published in the store for `pool` (read at most once per refresh gap). */
  async verify(pool: string, header: unknown): Promise<boolean> {
    if (this.accepts(pool, header)) return true;
    if (!ProbeTokens.wellFormed(header)) return false;
    await this.refresh(pool);
    return this.accepts(pool, header);
  }

  /** Mint, publish and accept a token for a probe of `pool` (this process holds its lock). */
  async mint(pool: string, ttlMs: number): Promise<MintedProbeToken> {
    const value = randomBytes(TOKEN_BYTES).toString('hex');
    const published = await this.store.publishProbeToken(pool, value, ttlMs);
    const entry: CachedToken = { bytes: Buffer.from(value), expiresAt: Infinity };
    this.minted.set(pool, [...(this.minted.get(pool) ?? []), entry]);
    return {
      value,
      renew: () => published.renew(),
      withdraw: async () => {
        const left = (this.minted.get(pool) ?? []).filter((t) => t !== entry);
        if (left.length > 0) this.minted.set(pool, left);
        else this.minted.delete(pool);
        await published.withdraw();
      },
    };
  }

  /** Drop what was read from the store for `pool` (its probe is over: its result was adopted). */
  forget(pool: string): void {
    this.cache.delete(pool);
  }

  private refresh(pool: string): Promise<void> {
    const running = this.refreshing.get(pool);
    if (running) return running;
    const wait = Math.max(
      0,
      (this.lastRefresh.get(pool) ?? -Infinity) + PROBE_TOKEN_REFRESH_MS - Date.now(),
    );
    const run = (async () => {
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.lastRefresh.set(pool, Date.now());
      try {
        const entries = await this.store.probeTokens(pool);
        const now = Date.now();
        this.cache.set(
          pool,
          entries
            .filter((e) => ProbeTokens.wellFormed(e.token))
            .map((e) => ({
              bytes: Buffer.from(e.token),
              expiresAt: now + Math.min(e.ttlMs, PROBE_TOKEN_CACHE_MS),
            })),
        );
      } catch {
        // Store unreachable: what is cached stays; an unknown token is admitted as usual.
      }
    })().finally(() => this.refreshing.delete(pool));
    this.refreshing.set(pool, run);
    return run;
  }
}

/** The "slot" of a probe request let through by `verify()`: holds nothing, releases nothing. */
export function probePass(pool: string): Lease {
  return { pool, id: 'probe', release: () => Promise.resolve() };
}
