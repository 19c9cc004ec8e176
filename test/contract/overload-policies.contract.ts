import { performance } from 'node:perf_hooks';
import type {
  AcquireOptions,
  AcquireResult,
  CapacityStore,
  Lease,
  PoolSnapshot,
  TenantSnapshot,
} from '../../src/storage/capacity-store.interface';
import { TOP_TENANTS, TRACKED_TENANTS, queueTargetIntervalMs } from '../../src/storage/queue-order';
import { waitFor } from '../harness/wait-for';

/** What a store offers beyond the interface's required methods. */
export interface OverloadContractFeatures {
  /** The store implements the synchronous fast path `tryAcquire(pool, tenant?)` (memory). */
  tryAcquire?: boolean;
}

type Extra = Omit<AcquireOptions, 'timeoutMs' | 'maxQueue'> &
  Partial<Pick<AcquireOptions, 'timeoutMs' | 'maxQueue'>>;

/**
 * The overload policies of issue 11 (tenants, priorities, `maxQueuePerTenant`, `queueTargetMs`),
 * as every CapacityStore must implement them: the "Exact semantics" of the shared design
 * (`queue-order.ts` and `capacity-store.interface.ts` name the rules). Run by
 * `memory-store.spec.ts`, `redis-store.spec.ts` and `redis-cluster-store.spec.ts`; `create`
 * gives a fresh, initialised store that sees no other test's data.
 *
 * Grant order is observed on pools of capacity 1: one lease is released at a time and the one
 * waiter it wakes is recorded. Waiters join one by one, each seen in the queue before the next
 * arrives, so arrival order is known (equal keys keep it). Time-based rules (`queueTargetMs`)
 * are driven by real short durations, which are the input of those rules, with margins taken
 * from the model and stated at each test; a loaded machine only lengthens waits and gaps, and
 * every such test is built so that longer ones cannot change its outcome (or it derives the
 * expected outcome from the drain interval the store reports).
 */
export function runOverloadPoliciesContract(
  create: () => Promise<CapacityStore>,
  features: OverloadContractFeatures = {},
): void {
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

  function acquire(pool: string, extra: Extra = {}): Promise<AcquireResult> {
    return store.acquire(pool, { timeoutMs: LONG, maxQueue: 1000, ...extra });
  }

  function lease(r: AcquireResult): Lease {
    if (!r.ok) throw new Error(`expected a slot, got ${r.reason}`);
    return r.lease;
  }

  /** A slot taken at once (the pool must have a free one and nobody waiting). */
  async function hold(pool: string, extra: Extra = {}): Promise<Lease> {
    return lease(await acquire(pool, extra));
  }

  async function queuedIs(pool: string, n: number): Promise<void> {
    await waitFor(
      async () => (await store.snapshot(pool)).queued === n,
      10_000,
      `${n} queued in ${pool}`,
    );
  }

  async function tenantsOf(pool: string): Promise<TenantSnapshot> {
    const { tenants } = await store.snapshot(pool);
    if (!tenants) throw new Error(`no tenants in the snapshot of ${pool}`);
    return tenants;
  }

  async function overloadOf(pool: string): Promise<NonNullable<PoolSnapshot['overload']>> {
    const { overload } = await store.snapshot(pool);
    if (!overload) throw new Error(`no overload in the snapshot of ${pool}`);
    return overload;
  }

  /** Let time pass until `performance.now() >= at`: time itself is the input of the rule tested. */
  async function until(at: number): Promise<void> {
    await waitFor(() => performance.now() >= at, at - performance.now() + 5000, 'time to pass');
  }

  const counts = (...pairs: Array<[string, number]>) =>
    pairs.map(([tenant, count]) => ({ tenant, count }));

  /**
   * The waiters of a pool of capacity 1, served one at a time so that the grant order is
   * observable. `order` lists the labels granted so far, `waited` their waits.
   */
  class Line {
    readonly order: string[] = [];
    readonly waited: Record<string, number> = {};
    private readonly pending = new Map<string, Promise<readonly [string, Lease]>>();
    private count = 0;

    constructor(private readonly pool: string) {}

    /** Queue one waiter; resolves once the store shows it queued (fails if it was answered). */
    async join(label: string, extra: Extra = {}): Promise<void> {
      let answered: AcquireResult | undefined;
      const p = acquire(this.pool, extra).then((r) => {
        answered ??= r;
        if (r.ok) this.waited[label] = r.waitedMs;
        return [label, lease(r)] as const;
      });
      // Settled by close() in afterEach when a test failed early: not an unhandled rejection.
      p.catch(() => undefined);
      this.pending.set(label, p);
      this.count++;
      const n = this.count;
      await waitFor(
        async () => {
          // Nothing is released while a waiter joins: an answer means it was never queued.
          if (answered) {
            throw new Error(
              `${label} was answered instead of queued: ${answered.ok ? 'a slot' : answered.reason}`,
            );
          }
          return (await store.snapshot(this.pool)).queued === n;
        },
        10_000,
        `${label} queued in ${this.pool}`,
      );
    }

    /** Release `current`: the one waiter it wakes is recorded; returns that waiter's lease. */
    async next(current: Lease): Promise<Lease> {
      await current.release();
      const [label, granted] = await Promise.race(this.pending.values());
      this.pending.delete(label);
      this.count--;
      this.order.push(label);
      return granted;
    }

    /** Serve every waiter in turn, then release the last lease; returns the whole order. */
    async drain(current: Lease): Promise<string[]> {
      while (this.pending.size > 0) current = await this.next(current);
      await current.release();
      return this.order;
    }
  }

  describe('order', () => {
    it('without tenants or priorities the queue is FIFO, and so is one tenant at one priority', async () => {
      await store.setCapacity('fifo', 1, 'manual');
      const line = new Line('fifo');
      const first = await hold('fifo');
      await line.join('a');
      await line.join('b', { priority: 0, priorityAging: 5 });
      await line.join('c');
      await line.join('d', { priority: 0 });
      // No request named a tenant or passed a target: the snapshot has neither part.
      const s = await store.snapshot('fifo');
      expect(s.tenants).toBeUndefined();
      expect(s.overload).toBeUndefined();
      expect(await line.drain(first)).toEqual(['a', 'b', 'c', 'd']);

      const solo = new Line('fifo');
      const second = await hold('fifo', { tenant: 'solo' });
      for (const label of ['e', 'f', 'g', 'h'])
        await solo.join(label, { tenant: 'solo', priority: 3 });
      expect(await solo.drain(second)).toEqual(['e', 'f', 'g', 'h']);
      expect(await store.snapshot('fifo')).toMatchObject({ active: 0, queued: 0 });
    });

    it('round-robin across tenants: a later tenant is served next to the first of a heavy tenant, each tenant in its own order', async () => {
      await store.setCapacity('rr', 1, 'manual');
      const line = new Line('rr');
      let current = await hold('rr');
      // Rounds: heavy 1..6, light 1..2 (equal keys keep arrival order).
      for (let i = 0; i < 6; i++) await line.join(`h${i}`, { tenant: 'heavy' });
      await line.join('l0', { tenant: 'light' });
      await line.join('l1', { tenant: 'light' });
      expect((await tenantsOf('rr')).queued).toEqual(counts(['heavy', 6], ['light', 2]));
      for (let i = 0; i < 3; i++) current = await line.next(current);
      expect(line.order).toEqual(['h0', 'l0', 'h1']);
      // The current round is now 2 (largest granted): a new tenant gets round 3, next to h2,
      // not round 1 ahead of l1 and not after every heavy waiter.
      await line.join('m0', { tenant: 'late' });
      expect(await line.drain(current)).toEqual([
        'h0',
        'l0',
        'h1',
        'l1',
        'h2',
        'm0',
        'h3',
        'h4',
        'h5',
      ]);
    });

    it('a higher priority is served first, equal priorities in arrival order, a negative one last', async () => {
      await store.setCapacity('prio', 1, 'manual');
      const line = new Line('prio');
      const first = await hold('prio');
      await line.join('neg', { priority: -1 });
      await line.join('low0');
      await line.join('low1', { priority: 0 });
      await line.join('high', { priority: 5 });
      await line.join('mid0', { priority: 1 });
      await line.join('mid1', { priority: 1 });
      expect(await line.drain(first)).toEqual(['high', 'mid0', 'mid1', 'low0', 'low1', 'neg']);
    });

    it('priorityAging bounds overtaking: one step of priority passes only waiters that queued fewer than priorityAging rounds before', async () => {
      await store.setCapacity('aging', 1, 'manual');
      const line = new Line('aging');
      const first = await hold('aging');
      const priorityAging = 2;
      // Keys (round - priority x aging): old 1, f1 2, f2 3, f3 4, urgent 5 - 2 = 3.
      await line.join('old', { priorityAging });
      await line.join('f1', { priorityAging });
      await line.join('f2', { priorityAging });
      await line.join('f3', { priorityAging });
      await line.join('urgent', { priority: 1, priorityAging });
      // urgent passes f3 (1 round before it) but not f2 (2 rounds: equal key, arrival order),
      // nor f1 or old, which queued longer before.
      expect(await line.drain(first)).toEqual(['old', 'f1', 'f2', 'urgent', 'f3']);
    });

    it('a tenant whose waiters all left starts afresh: its old rounds are forgotten', async () => {
      await store.setCapacity('fresh', 1, 'manual');
      const holder = await hold('fresh');
      const gone = new AbortController();
      const burst: Array<Promise<AcquireResult>> = [];
      for (let i = 0; i < 5; i++) {
        burst.push(acquire('fresh', { tenant: 'burst', signal: gone.signal }));
        await queuedIs('fresh', i + 1);
      }
      gone.abort();
      for (const r of await Promise.all(burst)) expect(r).toMatchObject({ reason: 'aborted' });
      await queuedIs('fresh', 0);
      // Had 'burst' kept its last round (5), its next waiter would get round 6, behind 'other'
      // (round 1); forgotten, both get round 1 and arrival order decides.
      const line = new Line('fresh');
      await line.join('burst-again', { tenant: 'burst' });
      await line.join('other', { tenant: 'other' });
      expect(await line.drain(holder)).toEqual(['burst-again', 'other']);
    });
  });

  describe('maxQueuePerTenant', () => {
    it('rejects only the tenant at its limit (tenant_queue_full, counted as rejected and shed), after the global maxQueue', async () => {
      await store.setCapacity('mq', 1, 'manual');
      const holder = await hold('mq');
      const limits = { maxQueuePerTenant: 2, maxQueue: 6 };
      const line = new Line('mq');
      await line.join('a0', { tenant: 'a', ...limits });
      await line.join('a1', { tenant: 'a', ...limits });
      expect(await acquire('mq', { tenant: 'a', ...limits })).toMatchObject({
        ok: false,
        reason: 'tenant_queue_full',
      });
      await line.join('b0', { tenant: 'b', ...limits });
      // Requests without a tenant share one default tenant, limited like any other.
      await line.join('d0', limits);
      await line.join('d1', limits);
      expect(await acquire('mq', limits)).toMatchObject({ ok: false, reason: 'tenant_queue_full' });
      await line.join('c0', { tenant: 'c', ...limits });
      // The whole queue is full (6): the global bound answers first, for every tenant.
      expect(await acquire('mq', { tenant: 'c', ...limits })).toMatchObject({
        ok: false,
        reason: 'queue_full',
      });
      expect(await acquire('mq', { tenant: 'a', ...limits })).toMatchObject({
        ok: false,
        reason: 'queue_full',
      });
      const s = await store.snapshot('mq');
      expect(s.queued).toBe(6);
      expect(s.counters).toMatchObject({ rejected: 4, shed: 2 });
      // The default tenant is not listed (only named tenants are).
      expect(s.tenants?.queued).toEqual(counts(['a', 2], ['b', 1], ['c', 1]));
      // Rounds: a0 1, a1 2, b0 1, d0 1, d1 2, c0 1.
      expect(await line.drain(holder)).toEqual(['a0', 'b0', 'd0', 'c0', 'a1', 'd1']);
      expect((await tenantsOf('mq')).queued).toEqual([]);
    });
  });

  describe('queueTargetMs', () => {
    /**
     * A standing queue: `n` waiters join at once; after 2 x target, the first is granted (a
     * sample above the target, from which the queue counts as above it), the second `holdMs`
     * later (the first drain gap, so drainMs >= holdMs), and then a whole interval passes with
     * nothing granted. Longer waits or gaps on a loaded machine keep every sample above the
     * target and the gap only grows. Returns the line (w0 and w1 served) and w1's lease.
     */
    async function standingQueue(
      pool: string,
      n: number,
      targetMs: number | undefined,
      holdMs: number,
    ): Promise<{ line: Line; current: Lease }> {
      const target = targetMs ?? 20;
      await store.setCapacity(pool, 1, 'manual');
      const holder = await hold(pool);
      const line = new Line(pool);
      for (let i = 0; i < n; i++) await line.join(`w${i}`, { queueTargetMs: targetMs });
      await until(performance.now() + 2 * target);
      let current = await line.next(holder);
      const aboveFrom = performance.now();
      expect(line.waited.w0).toBeGreaterThanOrEqual(target);
      await until(aboveFrom + holdMs);
      current = await line.next(current);
      await until(aboveFrom + queueTargetIntervalMs(target) + 20);
      return { line, current };
    }

    it('a standing queue sheds a new request at once (retryAfterS >= 1, no queue entry), until the queue empties', async () => {
      const target = 20; // interval 100 ms
      const holdMs = 40;
      const standing = await standingQueue('stand', 4, target, holdMs);
      const line = standing.line;
      let current = standing.current;
      const overload = await overloadOf('stand');
      expect(overload.shedding).toBe(true);
      const drainMs = overload.drainMs ?? NaN;
      expect(drainMs).toBeGreaterThanOrEqual(holdMs - 1); // clock granularity
      // Two waiters ahead: predicted (2 + 1) x drainMs >= 120 ms > target.
      const shed = await acquire('stand', { queueTargetMs: target });
      expect(shed).toMatchObject({
        ok: false,
        reason: 'shed',
        retryAfterS: Math.max(1, Math.ceil((2 * drainMs) / 1000)),
      });
      expect(!shed.ok && shed.retryAfterS).toBeGreaterThanOrEqual(1);
      const s = await store.snapshot('stand');
      expect(s.queued).toBe(2);
      expect(s.counters).toMatchObject({ rejected: 1, shed: 1, timedOut: 0 });

      // Served until the queue is empty: it no longer stands, the next request queues.
      current = await line.next(current);
      current = await line.next(current);
      expect((await overloadOf('stand')).shedding).toBe(false);
      await line.join('calm', { queueTargetMs: target });
      expect(await line.drain(current)).toEqual(['w0', 'w1', 'w2', 'w3', 'calm']);
      expect((await store.snapshot('stand')).counters).toMatchObject({ rejected: 1, shed: 1 });
    });

    it('while shedding, only the waiters served before a request count: a high priority one with nobody ahead waits ~drainMs', async () => {
      const target = 200; // interval 1 s
      const holdMs = 50;
      const { line, current } = await standingQueue('ahead', 6, target, holdMs);
      const overload = await overloadOf('ahead');
      expect(overload.shedding).toBe(true);
      const drainMs = overload.drainMs ?? NaN;
      // The drain gap is about holdMs: a stall of 150 ms would be needed to reach the target.
      expect(drainMs).toBeGreaterThanOrEqual(holdMs - 1); // clock granularity
      expect(drainMs).toBeLessThanOrEqual(target);
      // Four waiters ahead of a normal request: (4 + 1) x drainMs >= 250 ms > target.
      expect(await acquire('ahead', { queueTargetMs: target })).toMatchObject({
        ok: false,
        reason: 'shed',
      });
      // Nobody is ahead of a priority-5 request: its predicted wait is drainMs <= target, so it
      // queues, and overtakes the normal waiters.
      await line.join('urgent', { priority: 5, queueTargetMs: target });
      expect(await line.drain(current)).toEqual(['w0', 'w1', 'urgent', 'w2', 'w3', 'w4', 'w5']);
    });

    it('a burst that drains within the interval sheds nothing, even with waits above the target', async () => {
      const target = 100; // interval 500 ms
      await store.setCapacity('burst', 1, 'manual');
      const holder = await hold('burst');
      const line = new Line('burst');
      for (let i = 0; i < 4; i++) await line.join(`w${i}`, { queueTargetMs: target });
      await until(performance.now() + target + 20);
      let current = await line.next(holder);
      const aboveFrom = performance.now();
      expect(line.waited.w0).toBeGreaterThan(target);
      await until(aboveFrom + 60);
      current = await line.next(current);
      // Above the target for ~60 ms (< 500 ms: a stall of 440 ms would be needed to reach the
      // interval), drain known and (2 + 1) x drainMs >= 180 ms > target: only the interval
      // keeps this request from being shed.
      await line.join('late', { queueTargetMs: target });
      const overload = await overloadOf('burst');
      expect(overload.shedding).toBe(false);
      expect(overload.drainMs).toBeGreaterThanOrEqual(60 - 1);
      expect(await line.drain(current)).toEqual(['w0', 'w1', 'w2', 'w3', 'late']);
      expect((await store.snapshot('burst')).counters).toMatchObject({
        admitted: 6,
        rejected: 0,
        shed: 0,
      });
    });

    it('without queueTargetMs a standing queue sheds nothing and the snapshot has no overload part', async () => {
      const { line, current } = await standingQueue('plain', 4, undefined, 40);
      await line.join('late');
      const s = await store.snapshot('plain');
      expect(s.overload).toBeUndefined();
      expect(s.counters).toMatchObject({ rejected: 0, shed: 0 });
      expect(await line.drain(current)).toEqual(['w0', 'w1', 'w2', 'w3', 'late']);
    });
  });

  describe('per-tenant numbers', () => {
    const name = (prefix: string, i: number, width: number) =>
      `${prefix}${String(i).padStart(width, '0')}`;

    it('snapshot().tenants lists the top tenants by queued and admitted, largest first, ties by name, at most TOP_TENANTS', async () => {
      await store.setCapacity('top', 1, 'manual');
      const holder = await hold('top');
      expect((await store.snapshot('top')).tenants).toBeUndefined();
      const line = new Line('top');
      const n = TOP_TENANTS + 3;
      // Joined from the last name to the first, so the lists are sorted by the store.
      for (let i = n - 1; i >= 0; i--) {
        const times = i === 0 ? 3 : i === 1 ? 2 : 1;
        for (let k = 0; k < times; k++) await line.join(`${i}.${k}`, { tenant: name('t', i, 2) });
      }
      const expected = [3, 2, ...Array<number>(TOP_TENANTS - 2).fill(1)].map((count, i) => ({
        tenant: name('t', i, 2),
        count,
      }));
      // The holder named no tenant: nothing admitted is listed yet.
      expect(await tenantsOf('top')).toEqual({ queued: expected, admitted: [] });
      await line.drain(holder);
      expect(await tenantsOf('top')).toEqual({ queued: [], admitted: expected });
    });

    it('admitted counts live in a heavy-hitters table of TRACKED_TENANTS: a newcomer replaces the smallest (ties by name) with its count + 1', async () => {
      await store.setCapacity('hh', 1, 'manual');
      const admit = async (tenant: string, times = 1): Promise<void> => {
        for (let i = 0; i < times; i++) await (await hold('hh', { tenant })).release();
      };
      await admit('big', 5);
      await admit('mid', 4);
      const rest = Array.from({ length: TRACKED_TENANTS - 2 }, (_, i) => name('x', i, 3));
      for (const tenant of rest) await admit(tenant);
      const ones = (from: number, to: number) =>
        rest.slice(from, to).map((tenant) => ({ tenant, count: 1 }));
      const top = TOP_TENANTS;
      expect((await tenantsOf('hh')).admitted).toEqual([
        ...counts(['big', 5], ['mid', 4]),
        ...ones(0, top - 2),
      ]);
      // The table is full: 'new' evicts x000 (count 1, first by name) and counts 1 + 1.
      await admit('new');
      expect((await tenantsOf('hh')).admitted).toEqual([
        ...counts(['big', 5], ['mid', 4], ['new', 2]),
        ...ones(1, top - 2),
      ]);
      // x000 comes back untracked: it evicts x001 and counts 2.
      await admit(rest[0]);
      expect((await tenantsOf('hh')).admitted).toEqual([
        ...counts(['big', 5], ['mid', 4], ['new', 2], [rest[0], 2]),
        ...ones(2, top - 2),
      ]);
      // A tracked tenant counts on.
      await admit('mid', 2);
      expect((await tenantsOf('hh')).admitted.slice(0, 2)).toEqual(counts(['mid', 6], ['big', 5]));
      expect((await store.snapshot('hh')).counters.admitted).toBe(5 + 4 + rest.length + 1 + 1 + 2);
    });

    it('per-tenant tables empty out when waiters leave by abort, timeout, grant or rejectWaiters', async () => {
      await store.setCapacity('leave', 1, 'manual');
      const holder = await hold('leave');
      const quit = new AbortController();
      const aborted = acquire('leave', { tenant: 'quit', signal: quit.signal });
      await queuedIs('leave', 1);
      const granted = acquire('leave', { tenant: 'lucky' });
      await queuedIs('leave', 2);
      const closed = acquire('leave', { tenant: 'shut' });
      await queuedIs('leave', 3);
      expect((await tenantsOf('leave')).queued).toEqual(
        counts(['lucky', 1], ['quit', 1], ['shut', 1]),
      );
      quit.abort();
      expect(await aborted).toMatchObject({ ok: false, reason: 'aborted' });
      expect((await tenantsOf('leave')).queued).toEqual(counts(['lucky', 1], ['shut', 1]));
      expect(await acquire('leave', { tenant: 'slow', timeoutMs: 150 })).toMatchObject({
        ok: false,
        reason: 'timeout',
      });
      expect((await tenantsOf('leave')).queued).toEqual(counts(['lucky', 1], ['shut', 1]));
      await holder.release();
      const l = lease(await granted);
      expect((await tenantsOf('leave')).queued).toEqual(counts(['shut', 1]));
      store.rejectWaiters('leave');
      expect(await closed).toMatchObject({ ok: false, reason: 'closed' });
      const s = await store.snapshot('leave');
      expect(s).toMatchObject({ queued: 0, active: 1 });
      expect(s.tenants).toEqual({ queued: [], admitted: counts(['lucky', 1]) });
      await l.release();
    });

    if (features.tryAcquire) {
      it('the fast path tryAcquire(pool, tenant) counts admitted per tenant; without a tenant it counts none', async () => {
        await store.setCapacity('fast', 2, 'manual');
        const tryAcquire = (tenant?: string) => store.tryAcquire?.('fast', tenant) ?? null;
        const plain = tryAcquire();
        expect(plain).not.toBeNull();
        expect((await store.snapshot('fast')).tenants).toBeUndefined();
        const named = tryAcquire('acme');
        expect(named).not.toBeNull();
        expect(tryAcquire('acme')).toBeNull();
        expect((await tenantsOf('fast')).admitted).toEqual(counts(['acme', 1]));
        await plain?.release();
        await named?.release();
        const again = tryAcquire('acme');
        await again?.release();
        const s = await store.snapshot('fast');
        expect(s.tenants).toEqual({ queued: [], admitted: counts(['acme', 2]) });
        expect(s.counters.admitted).toBe(3);
      });
    }
  });
}
