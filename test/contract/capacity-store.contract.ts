import type {
  AcquireResult,
  CapacityStore,
  Lease,
} from '../../src/storage/capacity-store.interface';
import { waitFor } from '../harness/wait-for';

/**
 * The behaviour every CapacityStore must have. Run by `memory-store.spec.ts` and
 * `redis-store.spec.ts`; `create` gives a fresh, initialised store that sees no other test's data.
 */
export function runCapacityStoreContract(create: () => Promise<CapacityStore>): void {
  const stores: CapacityStore[] = [];
  let store: CapacityStore;
  const LONG = 30_000;

  beforeEach(async () => {
    store = await create();
    stores.push(store);
  });

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  async function take(
    pool: string,
    opts: { timeoutMs?: number; maxQueue?: number } = {},
  ): Promise<Lease> {
    const r = await store.acquire(pool, {
      timeoutMs: opts.timeoutMs ?? LONG,
      maxQueue: opts.maxQueue ?? 100,
    });
    if (!r.ok) throw new Error(`expected a slot of ${pool}, got ${r.reason}`);
    return r.lease;
  }

  function lease(r: AcquireResult): Lease {
    if (!r.ok) throw new Error(`expected a slot, got ${r.reason}`);
    return r.lease;
  }

  async function queued(pool: string, n: number): Promise<void> {
    await waitFor(
      async () => (await store.snapshot(pool)).queued === n,
      10_000,
      `${n} queued in ${pool}`,
    );
  }

  /** Resolves to true when the promise settled before every already-scheduled timer/I/O ran. */
  async function settledSoon(p: Promise<unknown>): Promise<boolean> {
    let settled = false;
    void p.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    return settled;
  }

  it('admits up to the capacity at once, queues the rest, and a release admits the next', async () => {
    await store.setCapacity('p', 2, 'manual');
    const a = await take('p');
    await take('p');
    const third = store.acquire('p', { timeoutMs: LONG, maxQueue: 100 });
    await queued('p', 1);
    expect(await store.snapshot('p')).toMatchObject({
      capacity: 2,
      source: 'manual',
      active: 2,
      queued: 1,
    });
    await a.release();
    lease(await third);
    expect(await store.snapshot('p')).toMatchObject({ active: 2, queued: 0 });
  });

  it('serves waiters in arrival order', async () => {
    await store.setCapacity('fifo', 1, 'manual');
    let current = await take('fifo');
    const order: number[] = [];
    const waiting: Array<Promise<Lease>> = [];
    for (let i = 0; i < 5; i++) {
      // Each waiter is in the queue before the next arrives, so arrival order is known.
      waiting.push(
        store.acquire('fifo', { timeoutMs: LONG, maxQueue: 100 }).then((r) => {
          order.push(i);
          return lease(r);
        }),
      );
      await queued('fifo', i + 1);
    }
    const pending = new Set(waiting.keys());
    for (let i = 0; i < 5; i++) {
      await current.release();
      const [j, next] = await Promise.race(
        [...pending].map((k) => waiting[k].then((l) => [k, l] as const)),
      );
      pending.delete(j);
      current = next;
      expect(j).toBe(i);
      expect(order).toEqual([...Array(i + 1).keys()]);
    }
    await current.release();
    expect(await store.snapshot('fifo')).toMatchObject({ active: 0, queued: 0 });
  });

  it('release is idempotent: a second call frees nothing more', async () => {
    await store.setCapacity('idem', 1, 'manual');
    const l = await take('idem');
    await Promise.all([l.release(), l.release()]);
    await l.release();
    expect((await store.snapshot('idem')).active).toBe(0);
    const first = await take('idem');
    const second = await store.acquire('idem', { timeoutMs: 200, maxQueue: 100 });
    expect(second).toMatchObject({ ok: false, reason: 'timeout' });
    await first.release();
    expect(store.localActive()).toBe(0);
  });

  it('times a waiter out, counts it, and leaves nothing in the queue', async () => {
    await store.setCapacity('to', 1, 'manual');
    const holder = await take('to');
    const r = await store.acquire('to', { timeoutMs: 150, maxQueue: 100 });
    expect(r).toMatchObject({ ok: false, reason: 'timeout' });
    expect(r.waitedMs).toBeGreaterThanOrEqual(100);
    const s = await store.snapshot('to');
    expect(s).toMatchObject({ active: 1, queued: 0 });
    expect(s.counters.timedOut).toBe(1);
    await holder.release();
    expect((await store.snapshot('to')).active).toBe(0);
  });

  it('a queue timeout racing a release never leaks a slot', async () => {
    await store.setCapacity('race', 1, 'manual');
    let admitted = 0;
    const refusals: string[] = [];
    for (let round = 0; round < 20; round++) {
      const holder = await take('race');
      const waiter = store.acquire('race', { timeoutMs: 30, maxQueue: 100 });
      // The release lands just before, at, or just after the waiter's deadline.
      setTimeout(() => void holder.release(), 25 + (round % 10));
      const r = await waiter;
      if (r.ok) {
        admitted++;
        await r.lease.release();
      } else {
        refusals.push(r.reason);
      }
      await holder.release();
      await waitFor(async () => (await store.snapshot('race')).active === 0, 5000, 'slot back');
      expect((await store.snapshot('race')).queued).toBe(0);
    }
    // A waiter that was not admitted timed out (nothing else can happen here).
    expect(refusals).toEqual(refusals.map(() => 'timeout'));
    // Still exactly one usable slot.
    const one = await take('race', { timeoutMs: 1000 });
    expect(await store.acquire('race', { timeoutMs: 100, maxQueue: 100 })).toMatchObject({
      ok: false,
    });
    await one.release();
    expect(store.localActive()).toBe(0);
    // Every waiter ended exactly one way, counted once: 20 holders, the admitted waiters and
    // `one` admitted; the other waiters and the last probe timed out.
    const { counters } = await store.snapshot('race');
    expect(counters).toMatchObject({ admitted: 20 + admitted + 1, timedOut: 20 - admitted + 1 });
  });

  it('an aborted waiter leaves the queue and never receives a slot', async () => {
    await store.setCapacity('ab', 1, 'manual');
    const holder = await take('ab');
    const controller = new AbortController();
    const waiter = store.acquire('ab', {
      timeoutMs: LONG,
      maxQueue: 100,
      signal: controller.signal,
    });
    await queued('ab', 1);
    controller.abort();
    expect(await waiter).toMatchObject({ ok: false, reason: 'aborted' });
    expect((await store.snapshot('ab')).queued).toBe(0);
    await holder.release();
    expect(await store.snapshot('ab')).toMatchObject({ active: 0, queued: 0 });
    expect(store.localActive()).toBe(0);

    const gone = new AbortController();
    const again = await take('ab');
    gone.abort();
    expect(
      await store.acquire('ab', { timeoutMs: LONG, maxQueue: 100, signal: gone.signal }),
    ).toMatchObject({
      ok: false,
      reason: 'aborted',
    });
    await again.release();
  });

  it('an already-aborted caller gets no slot, even when one is free', async () => {
    await store.setCapacity('gone', 2, 'manual');
    const ac = new AbortController();
    ac.abort();
    expect(
      await store.acquire('gone', { timeoutMs: LONG, maxQueue: 100, signal: ac.signal }),
    ).toMatchObject({ ok: false, reason: 'aborted' });
    expect(await store.snapshot('gone')).toMatchObject({ active: 0, queued: 0 });
    expect(store.localActive()).toBe(0);
  });

  it('answers queue_full beyond maxQueue (the bound holds for the whole pool)', async () => {
    await store.setCapacity('qf', 1, 'manual');
    const holder = await take('qf');
    const first = store.acquire('qf', { timeoutMs: LONG, maxQueue: 1 });
    await queued('qf', 1);
    expect(await store.acquire('qf', { timeoutMs: LONG, maxQueue: 1 })).toMatchObject({
      ok: false,
      reason: 'queue_full',
    });
    expect(await store.acquire('qf', { timeoutMs: LONG, maxQueue: 0 })).toMatchObject({
      ok: false,
      reason: 'queue_full',
    });
    expect((await store.snapshot('qf')).counters.rejected).toBe(2);
    await holder.release();
    await lease(await first).release();
    expect((await store.snapshot('qf')).active).toBe(0);
  });

  it('unknown capacity: requests wait (not admitted, not dropped) until a number is set', async () => {
    expect(await store.snapshot('unk')).toMatchObject({
      capacity: null,
      source: 'probing',
      active: 0,
    });
    const waiter = store.acquire('unk', { timeoutMs: LONG, maxQueue: 100 });
    await queued('unk', 1);
    expect(await settledSoon(waiter)).toBe(false);
    expect((await store.snapshot('unk')).active).toBe(0);
    await store.setCapacity('unk', 1, 'probe');
    const l = lease(await waiter);
    expect(await store.snapshot('unk')).toMatchObject({
      capacity: 1,
      source: 'probe',
      active: 1,
      queued: 0,
    });
    await l.release();
  });

  it('raising the capacity admits waiters at once', async () => {
    await store.setCapacity('raise', 1, 'manual');
    const holder = await take('raise');
    const w1 = store.acquire('raise', { timeoutMs: LONG, maxQueue: 100 });
    const w2 = store.acquire('raise', { timeoutMs: LONG, maxQueue: 100 });
    await queued('raise', 2);
    await store.setCapacity('raise', 3, 'probe');
    const [l1, l2] = [lease(await w1), lease(await w2)];
    expect(await store.snapshot('raise')).toMatchObject({ capacity: 3, active: 3, queued: 0 });
    await Promise.all([holder.release(), l1.release(), l2.release()]);
  });

  it('rejectWaiters answers closed, for the pool asked or for all, and keeps held slots', async () => {
    await store.setCapacity('ra', 1, 'manual');
    await store.setCapacity('rb', 1, 'manual');
    const ha = await take('ra');
    const hb = await take('rb');
    const wa = store.acquire('ra', { timeoutMs: LONG, maxQueue: 100 });
    const wb = store.acquire('rb', { timeoutMs: LONG, maxQueue: 100 });
    await queued('ra', 1);
    await queued('rb', 1);
    store.rejectWaiters('ra');
    expect(await wa).toMatchObject({ ok: false, reason: 'closed' });
    expect(await store.snapshot('rb')).toMatchObject({ queued: 1, active: 1 });
    store.rejectWaiters();
    expect(await wb).toMatchObject({ ok: false, reason: 'closed' });
    expect(await store.snapshot('ra')).toMatchObject({ active: 1, queued: 0 });
    expect((await store.snapshot('ra')).counters.rejected).toBe(1);
    await ha.release();
    await hb.release();
  });

  it('counts admitted, rejected and timed-out requests', async () => {
    await store.setCapacity('cnt', 2, 'manual');
    const a = await take('cnt');
    const b = await take('cnt');
    expect(await store.acquire('cnt', { timeoutMs: 50, maxQueue: 100 })).toMatchObject({
      reason: 'timeout',
    });
    expect(await store.acquire('cnt', { timeoutMs: 50, maxQueue: 0 })).toMatchObject({
      reason: 'queue_full',
    });
    store.recordRejection('cnt');
    await Promise.all([a.release(), b.release()]);
    await (await take('cnt')).release();
    await waitFor(
      async () => (await store.snapshot('cnt')).counters.rejected === 2,
      5000,
      'rejections',
    );
    expect((await store.snapshot('cnt')).counters).toEqual({
      admitted: 3,
      rejected: 2,
      timedOut: 1,
      shed: 0,
    });
  });

  it('localActive counts the slots this process holds', async () => {
    await store.setCapacity('la', 3, 'manual');
    expect(store.localActive()).toBe(0);
    const a = await take('la');
    const b = await take('la');
    expect(store.localActive()).toBe(2);
    await a.release();
    expect(store.localActive()).toBe(1);
    await b.release();
    expect(store.localActive()).toBe(0);
    expect(store.isReachable()).toBe(true);
  });

  it('close gives back held slots and answers waiters closed', async () => {
    await store.setCapacity('cl', 1, 'manual');
    await take('cl');
    const waiter = store.acquire('cl', { timeoutMs: LONG, maxQueue: 100 });
    await queued('cl', 1);
    await store.close();
    expect(await waiter).toMatchObject({ ok: false, reason: 'closed' });
    expect(store.localActive()).toBe(0);
  });

  it('probe lock: one owner at a time, renew and release only by the owner', async () => {
    const a = await store.tryProbeLock('pl', 10_000);
    expect(a).not.toBeNull();
    expect(await store.tryProbeLock('pl', 10_000)).toBeNull();
    expect(await a!.renew()).toBe(true);
    await a!.release();
    const b = await store.tryProbeLock('pl', 10_000);
    expect(b).not.toBeNull();
    // A has lost the lock: it can neither renew nor release B's.
    expect(await a!.renew()).toBe(false);
    await a!.release();
    expect(await store.tryProbeLock('pl', 10_000)).toBeNull();
    await b!.release();
    expect(await store.tryProbeLock('other', 10_000)).not.toBeNull();
  });

  it('probe lock expires after its TTL when not renewed', async () => {
    const dead = await store.tryProbeLock('exp', 150);
    expect(dead).not.toBeNull();
    let next: Awaited<ReturnType<CapacityStore['tryProbeLock']>> = null;
    await waitFor(
      async () => (next = await store.tryProbeLock('exp', 10_000)) !== null,
      5000,
      'lock expiry',
    );
    expect(await dead!.renew()).toBe(false);
    await dead!.release();
    expect(await store.tryProbeLock('exp', 10_000)).toBeNull();
    await next!.release();
  });

  it('probe tokens: published per pool, replaced by the next prober, renewed and withdrawn only by their own', async () => {
    const t1 = 'a'.repeat(48);
    const t2 = 'b'.repeat(48);
    expect(await store.probeTokens('pt')).toEqual([]);
    const first = await store.publishProbeToken('pt', t1, 10_000);
    const [entry] = await store.probeTokens('pt');
    expect(entry.token).toBe(t1);
    expect(entry.ttlMs).toBeGreaterThan(0);
    expect(entry.ttlMs).toBeLessThanOrEqual(10_000);
    expect(await store.probeTokens('other')).toEqual([]);
    expect(await first.renew()).toBe(true);
    const second = await store.publishProbeToken('pt', t2, 10_000);
    expect((await store.probeTokens('pt')).map((e) => e.token)).toEqual([t2]);
    // The first prober's token is gone: it can neither renew nor withdraw the second's.
    expect(await first.renew()).toBe(false);
    await first.withdraw();
    expect((await store.probeTokens('pt')).map((e) => e.token)).toEqual([t2]);
    expect(await second.renew()).toBe(true);
    await second.withdraw();
    expect(await store.probeTokens('pt')).toEqual([]);
  });

  it('a probe token expires after its TTL when not renewed', async () => {
    const token = await store.publishProbeToken('pte', 'c'.repeat(48), 150);
    await waitFor(async () => (await store.probeTokens('pte')).length === 0, 5000, 'expiry');
    expect(await token.renew()).toBe(false);
  });

  it('stores and returns probe results per pool', async () => {
    expect(await store.getProbeResult('pr')).toBeNull();
    const result = {
      maxConcurrency: 7,
      measuredAt: new Date().toISOString(),
      durationMs: 1234,
      report: { levels: [1, 2] },
    };
    await store.saveProbeResult('pr', result);
    expect(await store.getProbeResult('pr')).toEqual(result);
    expect(await store.getProbeResult('other')).toBeNull();
  });
}
