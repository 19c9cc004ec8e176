import { Latch, waitFor } from '../../test/harness/wait-for';
import { MemoryCapacityStore } from '../storage/memory-capacity.store';
import { AdmissionControl } from './admission-control';
import { AdmissionEvents, type AdmissionEvent } from './admission-events';
import { AdmissionGate } from './admission-gate';
import {
  BalancerQueueTimeoutException,
  BalancerUnavailableException,
} from './admission.exceptions';
import { BalancerPoolNotFoundError, BalancerService } from './balancer.service';
import { QueuedBodyBytes } from './body-budget';
import { PoolRegistry, type ResolvedPool } from './pool-registry';
import { RouteTable } from './route-table';
import { ProbeTokens } from './probe-tokens';

function pool(key: string, queueTimeoutMs = 30_000, maxQueue = 100): ResolvedPool {
  return {
    key,
    routes: [{ method: 'POST', path: key }],
    queueTimeoutMs,
    maxQueue,
    retryAfter: Math.max(1, Math.ceil(queueTimeoutMs / 1000)),
    probe: { method: 'POST', path: key, headers: {} },
    probeStatus: { state: 'skipped' },
  };
}

/** The service on the real memory store, registry, gate, events and admission (no Nest app needed). */
async function setup(pools: ResolvedPool[], capacity = 2) {
  const store = new MemoryCapacityStore();
  const registry = new PoolRegistry();
  const gate = new AdmissionGate();
  const events = new AdmissionEvents();
  const seen: AdmissionEvent[] = [];
  events.subscribe((e) => seen.push(e));
  for (const p of pools) {
    registry.addPool(p);
    await store.setCapacity(p.key, capacity, 'manual');
  }
  const control = new AdmissionControl(
    new RouteTable(),
    store,
    gate,
    new ProbeTokens(store),
    events,
    new QueuedBodyBytes(),
  );
  const service = new BalancerService(registry, control);
  return { store, gate, service, seen };
}

describe('BalancerService.run', () => {
  it('names the known pools when asked for one no route declares', async () => {
    const { service } = await setup([pool('/predict'), pool('gpu')]);
    const fn = jest.fn();
    const error = await service.run('tpu', fn).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BalancerPoolNotFoundError);
    expect((error as BalancerPoolNotFoundError).known).toEqual(['/predict', 'gpu']);
    expect((error as Error).message).toContain(
      'no pool named "tpu" (known pools: "/predict", "gpu")',
    );
    expect(fn).not.toHaveBeenCalled();
  });

  it('holds a slot while fn runs, returns its value and gives the slot back', async () => {
    const { service, store, seen } = await setup([pool('gpu')]);
    const result = await service.run('gpu', async () => {
      const s = await store.snapshot('gpu');
      return s.active;
    });
    expect(result).toBe(1);
    const after = await store.snapshot('gpu');
    expect(after.active).toBe(0);
    expect(after.counters.admitted).toBe(1);
    expect(seen).toEqual([{ pool: 'gpu', outcome: 'admitted', waitedMs: 0 }]);
  });

  it('rethrows what fn throws (sync or async) and releases the slot each time', async () => {
    const { service, store } = await setup([pool('gpu')], 1);
    const sync = new Error('sync failure');
    const async_ = new Error('async failure');
    await expect(
      service.run('gpu', () => {
        throw sync;
      }),
    ).rejects.toBe(sync);
    await expect(service.run('gpu', () => Promise.reject(async_))).rejects.toBe(async_);
    expect((await store.snapshot('gpu')).active).toBe(0);
    // The single slot is free again: a third call is admitted at once.
    await expect(service.run('gpu', () => 'ok')).resolves.toBe('ok');
  });

  it('admits at most the capacity and serves waiters in arrival order', async () => {
    const { service, store } = await setup([pool('gpu')], 2);
    const hold = new Latch();
    let inFlight = 0;
    let peak = 0;
    const started: number[] = [];
    const calls = Array.from({ length: 6 }, (_, i) =>
      service.run('gpu', async () => {
        started.push(i);
        peak = Math.max(peak, ++inFlight);
        await hold.promise;
        inFlight--;
        return i;
      }),
    );
    await waitFor(async () => (await store.snapshot('gpu')).queued === 4, 5000, '4 queued');
    expect(started).toEqual([0, 1]);
    hold.open();
    expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect((await store.snapshot('gpu')).active).toBe(0);
  });

  it("leaves the queue when aborted while queued: fn never runs, the reason is the signal's", async () => {
    const { service, store, seen } = await setup([pool('gpu')], 1);
    const hold = new Latch();
    const first = service.run('gpu', () => hold.promise);
    const abort = new AbortController();
    const queuedFn = jest.fn();
    const queued = service.run('gpu', queuedFn, { signal: abort.signal });
    const third = jest.fn(() => 'third');
    const behind = service.run('gpu', third);
    await waitFor(async () => (await store.snapshot('gpu')).queued === 2, 5000, '2 queued');
    const reason = new Error('consumer stopped');
    abort.abort(reason);
    await expect(queued).rejects.toBe(reason);
    expect((await store.snapshot('gpu')).queued).toBe(1);
    hold.open();
    await first;
    await expect(behind).resolves.toBe('third');
    expect(queuedFn).not.toHaveBeenCalled();
    expect(seen.map((e) => e.outcome)).toEqual(['admitted', 'aborted', 'admitted']);
    expect((await store.snapshot('gpu')).active).toBe(0);
  });

  it('does not take a slot for a signal that is already aborted', async () => {
    const { service, store } = await setup([pool('gpu')], 1);
    const abort = new AbortController();
    abort.abort();
    const fn = jest.fn();
    await expect(service.run('gpu', fn, { signal: abort.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(fn).not.toHaveBeenCalled();
    expect((await store.snapshot('gpu')).counters.admitted).toBe(0);
  });

  it("rejects with the 504-equivalent after the pool's queue timeout", async () => {
    const { service, store } = await setup([pool('gpu', 100)], 1);
    const hold = new Latch();
    const first = service.run('gpu', () => hold.promise);
    const fn = jest.fn();
    const error = await service.run('gpu', fn).catch((e: unknown) => e);
    hold.open();
    await first;
    expect(error).toBeInstanceOf(BalancerQueueTimeoutException);
    expect((error as BalancerQueueTimeoutException).getStatus()).toBe(504);
    expect((error as BalancerQueueTimeoutException).reason).toBe('queue_timeout');
    expect(fn).not.toHaveBeenCalled();
    expect((await store.snapshot('gpu')).counters.timedOut).toBe(1);
  });

  it('rejects with queue_full once maxQueue waiters are queued', async () => {
    const { service, store } = await setup([pool('gpu', 30_000, 1)], 1);
    const hold = new Latch();
    const first = service.run('gpu', () => hold.promise);
    const second = service.run('gpu', () => 'second');
    await waitFor(async () => (await store.snapshot('gpu')).queued === 1, 5000, '1 queued');
    const error = await service.run('gpu', () => 'third').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BalancerUnavailableException);
    expect((error as BalancerUnavailableException).reason).toBe('queue_full');
    hold.open();
    await Promise.all([first, second]);
  });

  it('rejects with the 503-equivalent while the gate is closed, and counts it', async () => {
    const { service, store, gate } = await setup([pool('gpu')]);
    const fn = jest.fn();
    gate.setHealthy(false);
    const unhealthy = await service.run('gpu', fn).catch((e: unknown) => e);
    expect(unhealthy).toBeInstanceOf(BalancerUnavailableException);
    expect((unhealthy as BalancerUnavailableException).reason).toBe('unhealthy');
    expect((unhealthy as BalancerUnavailableException).retryAfter).toBe(gate.unhealthyRetryAfter);
    gate.setHealthy(true);
    gate.shutdown();
    const stopping = await service.run('gpu', fn).catch((e: unknown) => e);
    expect((stopping as BalancerUnavailableException).reason).toBe('shutting_down');
    expect(fn).not.toHaveBeenCalled();
    expect((await store.snapshot('gpu')).counters.rejected).toBe(2);
  });

  it("answers a queued caller with the gate's reason when the gate closes during its wait", async () => {
    const { service, store, gate } = await setup([pool('gpu')], 1);
    const hold = new Latch();
    const first = service.run('gpu', () => hold.promise);
    const fn = jest.fn();
    const queued = service.run('gpu', fn);
    await waitFor(async () => (await store.snapshot('gpu')).queued === 1, 5000, '1 queued');
    gate.setHealthy(false);
    store.rejectWaiters(); // what BalancerLifecycle does when the gate closes
    await expect(queued).rejects.toMatchObject({ reason: 'unhealthy' });
    expect(fn).not.toHaveBeenCalled();
    hold.open();
    await first;
  });
});
