import type {
  AcquireOptions,
  AcquireResult,
  CapacityStore,
  Lease,
  PoolSnapshot,
} from '../../src/storage/capacity-store.interface';
import { InvalidCostError } from '../../src/storage/cost-units';
import { waitFor } from '../harness/wait-for';

type Extra = Omit<AcquireOptions, 'timeoutMs' | 'maxQueue'> &
  Partial<Pick<AcquireOptions, 'timeoutMs' | 'maxQueue'>>;

/**
 * Cost units (issue 22) as every CapacityStore must count them: the fit rule, strict
 * head-of-line order with mixed costs, a request larger than the capacity running alone,
 * `maxQueueCost`, corrections, and no unit left behind (see `src/storage/cost-units.ts`).
 * Run by `memory-store.spec.ts`, `redis-store.spec.ts` and `redis-cluster-store.spec.ts`.
 *
 * A store's state after `release()` / `resize()` has settled is final (memory: synchronous;
 * Redis: the script that freed the units granted the waiters that fit), so the snapshot read
 * right after it says who was granted; a granted waiter's own promise may resolve a little later
 * (Redis: after its claim), and is awaited where the test needs its lease.
 */
export function runCostUnitsContract(create: () => Promise<CapacityStore>): void {
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

  function acquire(pool: string, cost: number, extra: Extra = {}): Promise<AcquireResult> {
    return store.acquire(pool, { timeoutMs: LONG, maxQueue: 1000, cost, ...extra });
  }

  async function take(pool: string, cost: number, extra: Extra = {}): Promise<Lease> {
    const r = await acquire(pool, cost, extra);
    if (!r.ok) throw new Error(`expected a slot of ${pool}, got ${r.reason}`);
    return r.lease;
  }

  /**
   * Queue a waiter and wait until the store shows it (so arrival order is known); `granted`
   * settles with its lease (a waiter still queued when the test ends is answered `closed`).
   */
  async function enqueue(
    pool: string,
    cost: number,
    extra: Extra = {},
  ): Promise<{ granted: Promise<Lease> }> {
    const before = (await store.snapshot(pool)).queued;
    const granted = take(pool, cost, extra);
    granted.catch(() => undefined);
    await waitFor(
      async () => (await store.snapshot(pool)).queued === before + 1,
      10_000,
      `a waiter of ${cost} units in ${pool}`,
    );
    return { granted };
  }

  async function units(pool: string): Promise<NonNullable<PoolSnapshot['units']>> {
    const snap = await store.snapshot(pool);
    if (!snap.units) throw new Error(`no units in the snapshot of ${pool}`);
    return snap.units;
  }

  it('admits while the units fit, and shows units in flight and queued', async () => {
    await store.setCapacity('fit', 10, 'manual');
    await take('fit', 6);
    await take('fit', 4);
    await enqueue('fit', 1);
    expect(await store.snapshot('fit')).toMatchObject({
      active: 2,
      queued: 1,
      units: { active: 10, queued: 1, admitted: 10 },
    });
  });

  it('never holds more units than the capacity, with many concurrent mixed costs', async () => {
    const cap = 12;
    await store.setCapacity('many', cap, 'manual');
    let inFlight = 0;
    let peak = 0;
    let served = 0;
    // Deterministic mixed costs 1..7 (a fixed sequence: the same run on every store).
    const costs = Array.from({ length: 60 }, (_, i) => ((i * 5) % 7) + 1);
    await Promise.all(
      costs.map(async (cost, i) => {
        const lease = await take('many', cost);
        inFlight += cost;
        peak = Math.max(peak, inFlight);
        // Hold it across a few turns of the event loop (others are granted meanwhile).
        for (let k = 0; k < (i % 4) + 1; k++) await new Promise((r) => setImmediate(r));
        inFlight -= cost;
        served++;
        await lease.release();
      }),
    );
    expect(served).toBe(costs.length);
    expect(peak).toBeLessThanOrEqual(cap);
    expect(peak).toBeGreaterThan(1);
    expect(await units('many')).toMatchObject({ active: 0, queued: 0 });
  });

  it('keeps FIFO order with mixed costs: nobody overtakes a head that does not fit', async () => {
    await store.setCapacity('hol', 10, 'manual');
    const full = await take('hol', 10);
    const a = (await enqueue('hol', 3)).granted;
    const b = (await enqueue('hol', 8)).granted;
    const c = (await enqueue('hol', 2)).granted;
    const d = (await enqueue('hol', 5)).granted;
    await full.release();
    // a (3) fits; b (8) does not (3 + 8 > 10), so c (2) waits behind it although it would fit.
    expect(await units('hol')).toMatchObject({ active: 3, queued: 15 });
    const leaseA = await a;
    await leaseA.release();
    // b then c (8 + 2 = 10); d (5) waits.
    expect(await units('hol')).toMatchObject({ active: 10, queued: 5 });
    const [leaseB, leaseC] = await Promise.all([b, c]);
    await leaseC.release();
    expect(await units('hol')).toMatchObject({ active: 8, queued: 5 });
    await leaseB.release();
    const leaseD = await d;
    expect(leaseD.units).toBe(5);
    await leaseD.release();
    expect(await units('hol')).toMatchObject({ active: 0, queued: 0 });
  });

  it('head-of-line follows the queue order of priorities: a higher priority becomes the head', async () => {
    await store.setCapacity('prio', 10, 'manual');
    const full = await take('prio', 10);
    const big = (await enqueue('prio', 8)).granted;
    const urgent = (await enqueue('prio', 3, { priority: 1 })).granted;
    await full.release();
    // The urgent one (3) is the head and enters; the big one (8) waits for it (3 + 8 > 10).
    const urgentLease = await urgent;
    expect(await units('prio')).toMatchObject({ active: 3, queued: 8 });
    await urgentLease.release();
    const bigLease = await big;
    expect(await units('prio')).toMatchObject({ active: 8, queued: 0 });
    await bigLease.release();
  });

  it('does not starve a large request behind a stream of small ones', async () => {
    await store.setCapacity('big', 4, 'manual');
    const held = [await take('big', 1), await take('big', 1), await take('big', 1)];
    const big = (await enqueue('big', 4)).granted;
    const small: Array<Promise<Lease>> = [];
    for (let i = 0; i < 5; i++) small.push((await enqueue('big', 1)).granted);
    await held[0].release();
    // 2 in flight: the large head does not fit, and no small one passes it.
    expect(await store.snapshot('big')).toMatchObject({ active: 2, queued: 6 });
    await held[1].release();
    await held[2].release();
    const bigLease = await big;
    expect(await store.snapshot('big')).toMatchObject({ active: 1, queued: 5 });
    expect(await units('big')).toMatchObject({ active: 4, queued: 5 });
    await bigLease.release();
    // Four of the five small ones now; the fifth waits.
    expect(await store.snapshot('big')).toMatchObject({ active: 4, queued: 1 });
    for (const s of (await Promise.all(small.slice(0, 4))).reverse()) await s.release();
    const last = await small[4];
    await last.release();
    expect(await units('big')).toMatchObject({ active: 0, queued: 0 });
  });

  it('runs a request larger than the whole capacity alone, once nothing else is in flight', async () => {
    await store.setCapacity('huge', 4, 'manual');
    const small = await take('huge', 1);
    const huge = (await enqueue('huge', 10)).granted;
    const after = (await enqueue('huge', 1)).granted;
    await small.release();
    const hugeLease = await huge;
    expect(await units('huge')).toMatchObject({ active: 10, queued: 1 });
    await hugeLease.release();
    await (await after).release();
    // Straight away when the pool is empty, too.
    const alone = await take('huge', 25);
    expect(alone.units).toBe(25);
    await alone.release();
    expect(await units('huge')).toMatchObject({ active: 0, queued: 0 });
  });

  it('answers queue_cost_full beyond maxQueueCost, counted as rejected', async () => {
    await store.setCapacity('mqc', 2, 'manual');
    const held = await take('mqc', 2);
    const first = (await enqueue('mqc', 3, { maxQueueCost: 5 })).granted;
    const refused = await acquire('mqc', 3, { maxQueueCost: 5 });
    expect(refused).toMatchObject({ ok: false, reason: 'queue_cost_full' });
    const second = (await enqueue('mqc', 2, { maxQueueCost: 5 })).granted;
    expect(await units('mqc')).toMatchObject({ queued: 5 });
    expect((await store.snapshot('mqc')).counters.rejected).toBe(1);
    await held.release();
    await (await first).release();
    await (await second).release();
    expect(await units('mqc')).toMatchObject({ active: 0, queued: 0 });
  });

  it('a head that times out or is aborted lets the waiters behind it in', async () => {
    await store.setCapacity('gone', 4, 'manual');
    const held = await take('gone', 3);
    const abort = new AbortController();
    const big = store.acquire('gone', {
      timeoutMs: LONG,
      maxQueue: 100,
      cost: 4,
      signal: abort.signal,
    });
    await waitFor(async () => (await store.snapshot('gone')).queued === 1, 10_000, 'big queued');
    const small = (await enqueue('gone', 1)).granted;
    abort.abort();
    expect(await big).toMatchObject({ ok: false, reason: 'aborted' });
    const smallLease = await small;
    expect(await units('gone')).toMatchObject({ active: 4, queued: 0 });
    await smallLease.release();
    await held.release();
    expect(await units('gone')).toMatchObject({ active: 0, queued: 0 });
  });

  it('corrections give units back at once (waiters that fit enter) and claim more without refusal', async () => {
    await store.setCapacity('fix', 10, 'manual');
    const a = await take('fix', 6);
    const b = await take('fix', 4);
    const c = (await enqueue('fix', 3)).granted;
    await a.resize!(2);
    // 2 + 4 + 3 = 9: c entered.
    const leaseC = await c;
    expect(await units('fix')).toMatchObject({ active: 9, queued: 0 });
    expect(a.units).toBe(2);
    await b.resize!(8);
    expect(await units('fix')).toMatchObject({ active: 13 });
    // Over the capacity after a correction: nothing new enters until the units fit again.
    const d = (await enqueue('fix', 1)).granted;
    await leaseC.release();
    expect(await units('fix')).toMatchObject({ active: 10, queued: 1 });
    await a.release();
    const leaseD = await d;
    expect(await units('fix')).toMatchObject({ active: 9, queued: 0 });
    await leaseD.release();
    await b.release();
    expect(await units('fix')).toMatchObject({ active: 0, queued: 0 });
  });

  it('refuses a bad correction without changing anything, and ignores one after release', async () => {
    await store.setCapacity('bad', 10, 'manual');
    const a = await take('bad', 5);
    for (const bad of [0, -3, Number.NaN, Number.POSITIVE_INFINITY, 1e13]) {
      await expect(a.resize!(bad)).rejects.toBeInstanceOf(InvalidCostError);
    }
    expect(await units('bad')).toMatchObject({ active: 5 });
    await a.resize!(2.2); // fractions round up
    expect(await units('bad')).toMatchObject({ active: 3 });
    await a.release();
    await a.resize!(9);
    await a.release();
    expect(await units('bad')).toMatchObject({ active: 0, queued: 0 });
  });
}
