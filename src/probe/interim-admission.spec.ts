import { performance } from 'node:perf_hooks';
import type { ResolvedPool } from '../admission/pool-registry';
import { MemoryCapacityStore } from '../storage/memory-capacity.store';
import { interimCapOf, openInterim, ProbeSlots } from './interim-admission';

const KEY = '/predict';

function pool(): ResolvedPool {
  return {
    key: KEY,
    routes: [{ method: 'POST', path: KEY }],
    queueTimeoutMs: 30_000,
    maxQueue: 10,
    retryAfter: 30,
    probe: { method: 'POST', path: KEY, headers: {} },
    probeStatus: { state: 'pending' },
  };
}

const never = new AbortController().signal;

describe('interim admission while probing', () => {
  let store: MemoryCapacityStore;
  beforeEach(() => {
    store = new MemoryCapacityStore();
  });

  it('the interim cap is the last stored result, whatever its age, else 1', async () => {
    expect(await interimCapOf(store, KEY)).toEqual({ capacity: 1, from: 'minimum' });
    await store.saveProbeResult(KEY, {
      maxConcurrency: 5,
      measuredAt: '2020-01-01T00:00:00.000Z',
      durationMs: 1,
      report: null,
    });
    expect(await interimCapOf(store, KEY)).toEqual({ capacity: 5, from: 'stored' });
  });

  it('openInterim sets it on a pool with no capacity, never over a probe in progress', async () => {
    const p = pool();
    const lock = await store.tryProbeLock(KEY, 10_000);
    await openInterim(store, p, 10_000);
    expect((await store.snapshot(KEY)).capacity).toBeNull();
    await lock!.release();
    await openInterim(store, p, 10_000);
    expect(await store.snapshot(KEY)).toMatchObject({ capacity: 1, source: 'probing' });
    expect(p.probeStatus.interim).toEqual({ capacity: 1, from: 'minimum' });
    // A number in force is left alone.
    await store.setCapacity(KEY, 7, 'probing');
    await openInterim(store, p, 10_000);
    expect((await store.snapshot(KEY)).capacity).toBe(7);
  });

  it('a level of c: min(I, c) pool slots shared with real requests, the rest dedicated', async () => {
    const p = pool();
    const slots = new ProbeSlots(store, p, { capacity: 2, from: 'stored' });
    await slots.startLevel(5);
    expect(p.probeStatus.level).toBe(5);
    expect((await store.snapshot(KEY)).capacity).toBe(2);
    // Three dedicated requests hold no pool slot; the next two take the pool's two.
    const dedicated = await Promise.all([0, 1, 2].map(() => slots.enter(never)));
    expect((await store.snapshot(KEY)).active).toBe(0);
    const shared = await Promise.all([0, 1].map(() => slots.enter(never)));
    expect((await store.snapshot(KEY)).active).toBe(2);
    // A real request finds the pool full: probe plus real never pass the level.
    expect(store.tryAcquire(KEY)).toBeNull();
    shared[0]();
    const real = store.tryAcquire(KEY);
    expect(real).not.toBeNull();
    dedicated.forEach((leave) => leave());
    shared[1]();
    await real!.release();

    // A level below the interim cap: the pool's cap is the level, nothing dedicated.
    await slots.startLevel(1);
    expect((await store.snapshot(KEY)).capacity).toBe(1);
    const only = await slots.enter(never);
    expect((await store.snapshot(KEY)).active).toBe(1);
    only();
  });

  it('a probe request waits behind a real one, goes ahead of queued ones, and counts the wait as occupied', async () => {
    const p = pool();
    const slots = new ProbeSlots(store, p, { capacity: 1, from: 'minimum' });
    await slots.startLevel(1);
    const real = store.tryAcquire(KEY)!;
    const queuedReal = store.acquire(KEY, { timeoutMs: 10_000, maxQueue: 10 });
    const from = performance.now();
    const entered = slots.enter(never);
    await new Promise((r) => setTimeout(r, 30));
    await real.release();
    const leave = await entered;
    const to = performance.now();
    // The probe request got the slot before the real request queued ahead of it.
    expect((await store.snapshot(KEY)).queued).toBe(1);
    const occupied = slots.occupiedByOthers(from, to);
    expect(occupied).toBeGreaterThanOrEqual(25);
    expect(occupied).toBeLessThanOrEqual(to - from);
    leave();
    const granted = await queuedReal;
    expect(granted.ok).toBe(true);
    if (granted.ok) await granted.lease.release();
  });

  it('an aborted probe request leaves the queue', async () => {
    const slots = new ProbeSlots(store, pool(), { capacity: 1, from: 'minimum' });
    await slots.startLevel(1);
    const real = store.tryAcquire(KEY)!;
    const abort = new AbortController();
    const entered = slots.enter(abort.signal);
    abort.abort();
    await expect(entered).rejects.toThrow();
    expect((await store.snapshot(KEY)).queued).toBe(0);
    await real.release();
  });
});
