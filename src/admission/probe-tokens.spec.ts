import { randomBytes } from 'node:crypto';
import { waitFor } from '../../test/harness/wait-for';
import { MemoryCapacityStore } from '../storage/memory-capacity.store';
import { PROBE_TOKEN_REFRESH_MS, ProbeTokens } from './probe-tokens';

/** A memory store that counts the token reads `ProbeTokens` makes. */
class CountingStore extends MemoryCapacityStore {
  reads = 0;
  override async probeTokens(pool: string) {
    this.reads++;
    return super.probeTokens(pool);
  }
}

const forged = (): string => randomBytes(24).toString('hex');

describe('ProbeTokens', () => {
  let store: CountingStore;
  /** The worker that probes, and another worker sharing its store. */
  let prober: ProbeTokens;
  let other: ProbeTokens;

  beforeEach(() => {
    store = new CountingStore();
    prober = new ProbeTokens(store);
    other = new ProbeTokens(store);
  });

  it('a minted token is accepted at once by its process, and by another after one store read', async () => {
    const token = await prober.mint('/p', 10_000);
    expect(token.value).toMatch(/^[0-9a-f]{48}$/);
    expect(prober.accepts('/p', token.value)).toBe(true);
    expect(other.accepts('/p', token.value)).toBe(false); // not cached yet: no I/O on this path
    expect(await other.verify('/p', token.value)).toBe(true);
    expect(store.reads).toBe(1);
    // Cached now: no further read.
    expect(other.accepts('/p', token.value)).toBe(true);
    expect(await other.verify('/p', token.value)).toBe(true);
    expect(store.reads).toBe(1);
  });

  it('a token is accepted for its pool only', async () => {
    const token = await prober.mint('/p', 10_000);
    expect(prober.accepts('/q', token.value)).toBe(false);
    expect(await other.verify('/q', token.value)).toBe(false);
  });

  it('each probe gets a new token; a withdrawn one is refused everywhere after its probe', async () => {
    const first = await prober.mint('/p', 10_000);
    expect(await other.verify('/p', first.value)).toBe(true);
    await first.withdraw();
    other.forget('/p'); // what a worker does when it adopts the probe's result
    const second = await prober.mint('/p', 10_000);
    expect(second.value).not.toBe(first.value);
    expect(prober.accepts('/p', first.value)).toBe(false);
    expect(await other.verify('/p', first.value)).toBe(false);
    expect(await other.verify('/p', second.value)).toBe(true);
  });

  it('refuses forged, malformed and absent headers; malformed ones cost no store read', async () => {
    await prober.mint('/p', 10_000);
    expect(await other.verify('/p', forged())).toBe(false);
    const reads = store.reads;
    for (const bad of [undefined, '', 'x'.repeat(48), ['a', 'b'], forged().slice(1), 42]) {
      expect(other.accepts('/p', bad)).toBe(false);
      expect(await other.verify('/p', bad)).toBe(false);
    }
    expect(store.reads).toBe(reads);
  });

  it('a flood of unknown tokens costs at most one store read per refresh gap', async () => {
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 200 }, () => other.verify('/p', forged())),
    );
    expect(results.every((r) => r === false)).toBe(true);
    expect(store.reads).toBe(1); // concurrent unknown tokens share one read
    for (let i = 0; i < 3; i++) await other.verify('/p', forged());
    const elapsed = Date.now() - started;
    expect(store.reads).toBeLessThanOrEqual(1 + Math.ceil(elapsed / PROBE_TOKEN_REFRESH_MS));
    expect(store.reads).toBeGreaterThan(1); // a later unknown token still gets its read
  });

  it('the per-process token is accepted by its own process only', async () => {
    expect(prober.accepts('/p', prober.local)).toBe(true);
    expect(await other.verify('/p', prober.local)).toBe(false);
  });

  it('a token from a store that cannot be reached is refused, not thrown', async () => {
    const token = await prober.mint('/p', 10_000);
    jest.spyOn(store, 'probeTokens').mockRejectedValue(new Error('unreachable'));
    await expect(other.verify('/p', token.value)).resolves.toBe(false);
  });

  it('an expired token is refused', async () => {
    const token = forged();
    await store.publishProbeToken('/p', token, 1);
    await waitFor(async () => (await store.probeTokens('/p')).length === 0, 1000, 'expiry');
    expect(await other.verify('/p', token)).toBe(false);
  });
});
