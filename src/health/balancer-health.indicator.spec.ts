import { HealthIndicatorService } from '@nestjs/terminus';
import { AdmissionGate } from '../admission/admission-gate';
import { MemoryCapacityStore } from '../storage/memory-capacity.store';
import type { AdmissionCoverage } from '../admission/admission-coverage';
import { PoolRegistry, type ResolvedPool } from '../admission/pool-registry';
import { BalancerHealthIndicator } from './balancer-health.indicator';

function pool(key: string): ResolvedPool {
  return {
    key,
    routes: [{ method: 'POST', path: key }],
    queueTimeoutMs: 30_000,
    maxQueue: 10,
    retryAfter: 30,
    probe: { method: 'POST', path: key, headers: {} },
    probeStatus: { state: 'running' },
  };
}

describe('BalancerHealthIndicator', () => {
  let store: MemoryCapacityStore;
  let gate: AdmissionGate;
  let indicator: BalancerHealthIndicator;

  beforeEach(async () => {
    store = new MemoryCapacityStore();
    gate = new AdmissionGate();
    const registry = new PoolRegistry();
    registry.addPool(pool('/a'));
    registry.addPool(pool('/b'));
    await store.setCapacity('/a', 4, 'manual');
    const coverage = { report: () => ({ unprotected: [], unadmitted: {}, unresolved: {} }) };
    indicator = new BalancerHealthIndicator(
      new HealthIndicatorService(),
      store,
      registry,
      gate,
      coverage as unknown as AdmissionCoverage,
    );
  });

  it('is not ready while a pool has no capacity, and names that pool', async () => {
    const result = await indicator.isHealthy();
    expect(result.balancer).toMatchObject({
      status: 'down',
      state: 'probing',
      reasons: ['probing'],
      probing: ['/b'],
      gate: 'open',
      store: 'reachable',
    });
    expect(result.balancer.pools).toEqual({
      '/a': { capacity: 4, source: 'manual', probe: 'running' },
      '/b': { capacity: null, source: 'probing', probe: 'running' },
    });
  });

  it('is ready once every pool has a capacity, under the key given', async () => {
    await store.setCapacity('/b', 2, 'probe');
    const result = await indicator.isHealthy('lb');
    expect(result.lb).toMatchObject({ status: 'up', state: 'ready', reasons: [], probing: [] });
  });

  it('while probing: not ready at the minimum interim cap, ready at a stored result', async () => {
    await store.setCapacity('/b', 1, 'probing');
    const minimum = await indicator.readiness();
    expect(minimum).toMatchObject({ ready: false, state: 'probing', probing: ['/b'] });
    expect(minimum.pools['/b']).toEqual({
      capacity: 1,
      source: 'probing',
      probe: 'running',
      interim: 'minimum',
    });
    // A re-probe (forceReprobe, resultTtl) admits at the last stored result: a measured number.
    await store.saveProbeResult('/b', {
      maxConcurrency: 6,
      measuredAt: new Date().toISOString(),
      durationMs: 1,
      report: null,
    });
    await store.setCapacity('/b', 6, 'probing');
    const stored = await indicator.readiness();
    expect(stored).toMatchObject({ ready: true, state: 'ready', probing: [] });
    expect(stored.pools['/b'].interim).toBe('stored');
  });

  it('puts shutting_down ahead of every other reason', async () => {
    gate.setHealthy(false);
    expect((await indicator.readiness()).reasons).toEqual(['unhealthy', 'probing']);
    gate.shutdown();
    const r = await indicator.readiness();
    expect(r).toMatchObject({ ready: false, state: 'shutting_down', gate: 'shutting_down' });
    expect(r.reasons).toEqual(['shutting_down', 'probing']);
  });

  it('reports an unreachable store instead of probing pools', async () => {
    jest.spyOn(store, 'isReachable').mockReturnValue(false);
    const snapshot = jest.spyOn(store, 'snapshot');
    const r = await indicator.readiness();
    expect(r).toMatchObject({
      ready: false,
      state: 'store_unreachable',
      store: 'unreachable',
      probing: [],
    });
    expect(snapshot).not.toHaveBeenCalled();
  });

  it('counts a store that fails to answer as unreachable', async () => {
    await store.setCapacity('/b', 2, 'probe');
    jest.spyOn(store, 'snapshot').mockRejectedValue(new Error('connection lost'));
    const r = await indicator.readiness();
    expect(r).toMatchObject({ ready: false, state: 'store_unreachable', probing: [] });
  });
});
