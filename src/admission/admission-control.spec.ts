import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { MemoryCapacityStore } from '../storage/memory-capacity.store';
import { DEFAULT_PRIORITY_AGING } from '../storage/queue-order';
import { AdmissionControl } from './admission-control';
import { AdmissionEvents } from './admission-events';
import { AdmissionGate } from './admission-gate';
import { BalancerService } from './balancer.service';
import { QueuedBodyBytes } from './body-budget';
import { OverloadPolicy } from './overload-policy';
import { PoolRegistry, type ResolvedPool } from './pool-registry';
import { RouteTable } from './route-table';
import { ProbeTokens } from './probe-tokens';
import type { OverloadSettings } from '../config/overload-options';

function pool(key: string, overload?: OverloadSettings): ResolvedPool {
  return {
    key,
    routes: [{ method: 'GET', path: key }],
    queueTimeoutMs: 30_000,
    maxQueue: 100,
    retryAfter: 30,
    overload: overload && OverloadPolicy.from(key, overload, false),
    probe: { method: 'GET', path: key, headers: {} },
    probeStatus: { state: 'skipped' },
  };
}

/** A Node request/response pair with the given headers (never sent anywhere). */
function http(headers: Record<string, string> = {}) {
  const rawReq = new IncomingMessage(new Socket());
  rawReq.headers = headers;
  return { req: rawReq, rawReq, raw: new ServerResponse(rawReq) };
}

/** Admission on the real memory store, with spies on what it is asked. */
async function setup(pools: ResolvedPool[], capacity = 1) {
  const store = new MemoryCapacityStore();
  const registry = new PoolRegistry();
  for (const p of pools) {
    registry.addPool(p);
    await store.setCapacity(p.key, capacity, 'manual');
  }
  const control = new AdmissionControl(
    new RouteTable(),
    store,
    new AdmissionGate(),
    new ProbeTokens(store),
    new AdmissionEvents(),
    new QueuedBodyBytes(),
  );
  const tryAcquire = jest.spyOn(store, 'tryAcquire');
  const acquire = jest.spyOn(store, 'acquire');
  return { store, control, tryAcquire, acquire, service: new BalancerService(registry, control) };
}

describe('AdmissionControl: overload policies wiring', () => {
  it('without a policy: the fast path passes no tenant, a queued request no policy options', async () => {
    const p = pool('/plain');
    const { control, store, tryAcquire, acquire } = await setup([p]);
    const first = control.admit({ pool: p, ...http({ 'x-api-key': 'acme' }) });
    expect(first).not.toBeInstanceOf(Promise);
    expect(tryAcquire).toHaveBeenLastCalledWith('/plain', undefined);
    const second = control.admit({ pool: p, ...http({ 'x-api-key': 'acme' }) });
    expect(second).toBeInstanceOf(Promise);
    expect(Object.keys(acquire.mock.calls[0][1]).sort()).toEqual([
      'maxQueue',
      'signal',
      'timeoutMs',
    ]);
    await (first as { release(): Promise<void> }).release();
    await (await second).release();
    await store.close();
  });

  it('reads the tenant before the fast path, the priority only for a request that queues', async () => {
    const priority = jest.fn((req: IncomingMessage) => Number(req.headers['x-priority'] ?? 0));
    const p = pool('/fair', {
      tenant: (req) => req.headers['x-api-key'],
      priority,
      maxQueuePerTenant: 5,
      queueTargetMs: 40,
    });
    const { control, store, tryAcquire, acquire } = await setup([p]);
    const first = control.admit({ pool: p, ...http({ 'x-api-key': 'acme', 'x-priority': '2' }) });
    expect(first).not.toBeInstanceOf(Promise);
    expect(tryAcquire).toHaveBeenLastCalledWith('/fair', 'acme');
    expect(priority).not.toHaveBeenCalled();

    const second = control.admit({ pool: p, ...http({ 'x-api-key': 'beta', 'x-priority': '3' }) });
    expect(second).toBeInstanceOf(Promise);
    expect(priority).toHaveBeenCalledTimes(1);
    expect(acquire.mock.calls[0][1]).toMatchObject({
      tenant: 'beta',
      priority: 3,
      priorityAging: DEFAULT_PRIORITY_AGING,
      maxQueuePerTenant: 5,
      queueTargetMs: 40,
      timeoutMs: 30_000,
      maxQueue: 100,
    });
    await (first as { release(): Promise<void> }).release();
    await (await second).release();
    await store.close();
  });

  it('BalancerService.run passes tenant and priority, normalised, with the pool policy', async () => {
    const p = pool('gpu', { priorityAging: 10 });
    const { service, store, tryAcquire, acquire } = await setup([p]);
    let release!: () => void;
    const busy = service.run('gpu', () => new Promise<void>((r) => (release = r)), {
      tenant: 'team-a',
    });
    expect(tryAcquire).toHaveBeenLastCalledWith('gpu', 'team-a');
    const queued = service.run('gpu', () => 'done', { tenant: 'x'.repeat(100), priority: 2.7 });
    await Promise.resolve();
    expect(acquire.mock.calls[0][1]).toMatchObject({
      tenant: 'x'.repeat(64),
      priority: 2,
      priorityAging: 10,
    });
    release();
    await busy;
    await expect(queued).resolves.toBe('done');
    await store.close();
  });
});
