import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { EventEmitter, once } from 'node:events';
import { AdmissionGate } from '../admission/admission-gate';
import { CapacityStore } from '../storage/capacity-store.interface';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { RouteDiscovery } from './route-discovery';

/**
 * Startup and shutdown of admission: discovers watched routes, connects the store, sets manual
 * and default capacities (probed pools are the probe runner's), and drains at shutdown.
 */
@Injectable()
export class BalancerLifecycle
  implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger('BalancerModule');
  private unsubscribe?: () => void;
  private closed = false;

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly discovery: RouteDiscovery,
    private readonly gate: AdmissionGate,
  ) {
    gate.unhealthyRetryAfter = Math.max(1, Math.ceil(options.healthCheckInterval));
  }

  async onModuleInit(): Promise<void> {
    const pools = this.discovery.discover();
    await this.store.init();
    // Requests already queued when the gate closes get their 503 now, not a 504 later.
    this.unsubscribe = this.gate.onChange((open) => {
      if (!open) this.store.rejectWaiters();
    });
    for (const pool of pools) {
      const routes = pool.routes.map((r) => `${r.method} ${r.path}`).join(', ');
      if (pool.manualCapacity !== undefined) {
        await this.store.setCapacity(pool.key, pool.manualCapacity, 'manual');
        pool.probeStatus = { state: 'skipped', error: 'manual capacity' };
        this.log(`watching ${routes}: capacity ${pool.manualCapacity} (manual)`);
      } else if (!this.options.probeOnStartup) {
        await this.store.setCapacity(pool.key, this.options.defaultCapacity, 'default');
        pool.probeStatus = { state: 'skipped', error: 'probe_on_startup is false' };
        this.log(
          `watching ${routes}: capacity ${this.options.defaultCapacity} (default; probing is off)`,
        );
      } else {
        this.log(`watching ${routes}: capacity will be probed once the server listens`);
      }
    }
  }

  /** Stop admitting, answer the queue with 503, and let in-flight requests finish. */
  async beforeApplicationShutdown(): Promise<void> {
    this.gate.shutdown();
    this.store.rejectWaiters();
    const deadline = Date.now() + this.options.drainTimeout * 1000;
    const tick = new EventEmitter();
    while (this.store.localActive() > 0 && Date.now() < deadline) {
      const t = setTimeout(() => tick.emit('t'), 20);
      await once(tick, 't');
      clearTimeout(t);
    }
    const left = this.store.localActive();
    if (left > 0)
      this.logger.warn(`drain timeout: ${left} request(s) still running; releasing their slots`);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    await this.store.close();
  }

  private log(message: string): void {
    if (this.options.logger) this.logger.log(message);
  }
}
