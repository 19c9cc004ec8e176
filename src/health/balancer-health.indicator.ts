import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { AdmissionGate } from '../admission/admission-gate';
import { CapacityStore, type PoolSnapshot } from '../storage/capacity-store.interface';
import { PoolRegistry } from '../admission/pool-registry';
import { AdmissionCoverage } from '../admission/admission-coverage';

/**
 * The most important reason first: `shutting_down` > `unhealthy` > `unprotected` >
 * `store_unreachable` > `probing`. `unprotected`: a watched route does not carry admission, or
 * requests reached a watched handler without it (never silent).
 */
export type BalancerReadinessState =
  'ready' | 'probing' | 'store_unreachable' | 'unprotected' | 'unhealthy' | 'shutting_down';

export interface BalancerPoolReadiness {
  /** `null` while the pool has no capacity yet (no probe result, no interim cap). */
  capacity: number | null;
  source: string;
  probe: string;
  /**
   * While probing with an interim cap: `stored` (the last probe result: ready) or `minimum`
   * (1, nothing measured yet: not ready). Absent otherwise.
   */
  interim?: 'stored' | 'minimum';
}

/** What `BalancerHealthIndicator` reports (the details of its Terminus result). */
export interface BalancerReadiness {
  ready: boolean;
  state: BalancerReadinessState;
  /** Every reason this process is not ready, e.g. `['unhealthy', 'probing']`; empty when ready. */
  reasons: Exclude<BalancerReadinessState, 'ready'>[];
  /** Admission gate of this process: open, or why it is closed. */
  gate: 'open' | 'unhealthy' | 'shutting_down';
  store: 'reachable' | 'unreachable';
  /** Pools that have no capacity yet, or are probed at the minimum interim cap (1). */
  probing: string[];
  pools: Record<string, BalancerPoolReadiness>;
  /** Watched routes found without admission at bootstrap (`GET /predict (Api.predict): why`). */
  unprotected: string[];
  /** Requests that reached a watched handler without admission, per handler (`Api.predict`). */
  unadmitted: Record<string, number>;
  /**
   * Requests on watched handlers that the route table could not place, per handler: answered
   * 503 `unresolved_route` (fail closed). Shown, not a readiness reason: nothing ran uncapped.
   */
  unresolved: Record<string, number>;
}

/** How long readiness waits for one pool's numbers from the store. */
const SNAPSHOT_TIMEOUT_MS = 1000;

/**
 * Terminus indicator for readiness: up when every watched pool has a capacity worth sending
 * traffic to (probed, manual, default, adaptive, or while probing an interim cap taken from a
 * stored probe result), the store is reachable and the admission gate is open; down otherwise,
 * with details that name what is not ready. A pool probed at the minimum interim cap (1: nothing
 * was ever measured) serves the requests that reach it but is not ready, so a load balancer keeps
 * the traffic on workers that know their number. Add it to your own health controller:
 *
 * ```ts
 * @Get('ready') @HealthCheck()
 * ready() { return this.health.check([() => this.balancer.isHealthy('balancer')]); }
 * ```
 */
@Injectable()
export class BalancerHealthIndicator {
  constructor(
    private readonly indicator: HealthIndicatorService,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly registry: PoolRegistry,
    private readonly gate: AdmissionGate,
    private readonly coverage: AdmissionCoverage,
  ) {}

  /** The Terminus result under `key` (default `balancer`). */
  async isHealthy<const Key extends string = 'balancer'>(
    key: Key = 'balancer' as Key,
  ): Promise<HealthIndicatorResult<Key>> {
    const session = this.indicator.check(key);
    const readiness = await this.readiness();
    const { ready: _ready, ...details } = readiness;
    return readiness.ready ? session.up(details) : session.down(details);
  }

  /** Readiness of this process, without the Terminus wrapping. */
  async readiness(): Promise<BalancerReadiness> {
    // Read the gate first: shutdown must show at once, whatever the store says.
    const gate = this.gate.closedReason ?? 'open';
    let reachable = this.store.isReachable();
    const pools: Record<string, BalancerPoolReadiness> = {};
    const probing: string[] = [];
    await Promise.all(
      this.registry.all().map(async (pool) => {
        const snapshot = reachable ? await this.snapshot(pool.key) : null;
        // A store that cannot answer counts as unreachable, not as a pool still probing.
        if (snapshot === null) reachable = false;
        const capacity = snapshot?.capacity ?? null;
        pools[pool.key] = {
          capacity,
          source: snapshot?.source ?? 'unknown',
          probe: pool.probeStatus.state,
        };
        if (snapshot && capacity === null) probing.push(pool.key);
        else if (snapshot?.source === 'probing') {
          // The store's probe result is global: every worker tells `stored` from `minimum`.
          const stored = await this.storedResult(pool.key);
          pools[pool.key].interim = stored ? 'stored' : 'minimum';
          if (!stored) probing.push(pool.key);
        }
      }),
    );
    probing.sort();
    const reasons: BalancerReadiness['reasons'] = [];
    if (gate !== 'open') reasons.push(gate);
    const { unprotected, unadmitted, unresolved } = this.coverage.report();
    if (unprotected.length > 0 || Object.keys(unadmitted).length > 0) reasons.push('unprotected');
    if (!reachable) reasons.push('store_unreachable');
    if (probing.length > 0) reasons.push('probing');
    return {
      ready: reasons.length === 0,
      state: reasons[0] ?? 'ready',
      reasons,
      gate,
      store: reachable ? 'reachable' : 'unreachable',
      probing,
      pools,
      unprotected,
      unadmitted,
      unresolved,
    };
  }

  /** Whether `pool` has a stored probe result (its interim cap is a measured number). */
  private async storedResult(pool: string): Promise<boolean> {
    try {
      return (await this.store.getProbeResult(pool)) !== null;
    } catch {
      return false;
    }
  }

  private async snapshot(pool: string): Promise<PoolSnapshot | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), SNAPSHOT_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.store.snapshot(pool), timeout]);
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }
}
