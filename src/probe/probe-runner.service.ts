import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleDestroy,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { CapacityStore, type StoredProbeResult } from '../storage/capacity-store.interface';
import { PoolRegistry, type ResolvedPool } from '../admission/pool-registry';
import { probeRequestUnits } from '../admission/cost-policy';
import { ProbeTokens, type MintedProbeToken } from '../admission/probe-tokens';
import { BALANCER_OPTIONS, PROBE_HEADER } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { ProbeAbortedError, ProbeError, ProbeNoPathError } from './probe.errors';
import { interimCapOf, openInterim, ProbeSlots } from './interim-admission';
import { ProbeService } from './probe.service';
import type { ProbeTarget } from './probe.types';

/** How often a worker waiting for another's probe checks for the result (and a dead prober). */
export const PROBE_WAIT_POLL_MS = 500;

/** Where this app listens, as the probe reaches it over loopback. */
interface LoopbackTarget {
  origin: string;
  socketPath?: string;
  insecureTls: boolean;
}

type PoolOutcome = 'settled' | 'lost_lock';

/**
 * The startup probe. Once the HTTP server listens, probes every watched pool that has no
 * manual capacity, one pool after another, over loopback. Its requests carry a token minted
 * for this probe and published in the store with the probe lock, so they skip admission in
 * whichever worker receives them (several workers on one port). Meanwhile the pool's real
 * requests are admitted at an interim cap (its last stored result, else 1; source `probing`),
 * sharing each level with the probe so the endpoint never sees more than the level measured
 * (`interim-admission.ts`).
 *
 * Coordination through the `CapacityStore` (shared by every worker with Redis): a stored result
 * is reused unless it is older than `probe.resultTtl` or `forceReprobe` is set; one worker takes
 * the probe lock and measures, renewing the lock; the others wait, polling for the published
 * result and taking over if the lock expires. With `forceReprobe`, a stored result counts only
 * when it was measured after this app started, so a forced re-measure happens once per
 * deployment, not once per worker.
 *
 * A failed probe is logged as an error, shown in `/balancer/stats` (`probe.state: failed`,
 * `probe.error`), and the pool gets the largest level the probe proved within the limits, 1
 * when none (source `default`): never `defaultCapacity` above what was measured.
 */
@Injectable()
export class ProbeRunner implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('BalancerProbe');
  private readonly stopping = new AbortController();
  private readonly bootedAt = Date.now();
  private running: Promise<void> | null = null;
  private resolveIdle!: () => void;
  private readonly idle = new Promise<void>((resolve) => (this.resolveIdle = resolve));

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    @Inject(CapacityStore) private readonly store: CapacityStore,
    private readonly registry: PoolRegistry,
    private readonly tokens: ProbeTokens,
    private readonly probe: ProbeService,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /**
   * Resolves when every pool's startup probe has settled (measured, reused, failed or aborted),
   * at once when there is nothing to probe. Never rejects.
   */
  whenIdle(): Promise<void> {
    return this.idle;
  }

  onApplicationBootstrap(): void {
    const pools = this.registry.all().filter((p) => p.probeStatus.state === 'pending');
    if (!this.options.probeOnStartup || pools.length === 0) {
      this.resolveIdle();
      return;
    }
    // In the background: bootstrap (and `app.listen()`) must not wait for the probe.
    this.running = this.runAll(pools)
      .catch((err: unknown) => this.logger.error(`startup probe crashed: ${String(err)}`))
      .finally(() => this.resolveIdle());
  }

  /** First shutdown hook: abort in-flight probe requests and release the lock. */
  async onModuleDestroy(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.onModuleDestroy();
  }

  private async runAll(pools: ResolvedPool[]): Promise<void> {
    // Every pool admits at its interim cap from the start, not only once its turn comes.
    for (const pool of pools) await openInterim(this.store, pool, this.options.probe.lockTtlMs);
    const target = await this.waitForServer();
    if (!target) {
      for (const pool of pools) {
        if (this.stopping.signal.aborted) this.markAborted(pool);
        else await this.fail(pool, 'the app has no listening HTTP server to probe');
      }
      return;
    }
    // One pool at a time: endpoints often share the hardware they would be measured on.
    for (const pool of pools) {
      if (this.stopping.signal.aborted) {
        this.markAborted(pool);
        continue;
      }
      await this.probePool(pool, target);
    }
  }

  /** Resolve once the HTTP server listens; `null` when there is none or the app stops first. */
  private async waitForServer(): Promise<LoopbackTarget | null> {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server || typeof server.address !== 'function') return null;
    if (!server.listening) {
      const listening = await new Promise<boolean>((resolve) => {
        const done = (ok: boolean): void => {
          server.off('listening', onListening);
          this.stopping.signal.removeEventListener('abort', onAbort);
          resolve(ok);
        };
        const onListening = (): void => done(true);
        const onAbort = (): void => done(false);
        server.once('listening', onListening);
        this.stopping.signal.addEventListener('abort', onAbort);
      });
      if (!listening) return null;
    }
    return loopbackOf(server);
  }

  private async probePool(pool: ResolvedPool, target: LoopbackTarget): Promise<void> {
    if (!pool.probe.path) {
      await this.fail(pool, new ProbeNoPathError(pool.key).message);
      return;
    }
    let announcedWait = false;
    while (!this.stopping.signal.aborted) {
      const stored = await this.reusable(pool);
      if (stored) {
        await this.reuse(pool, stored);
        return;
      }
      const lock = await this.store.tryProbeLock(pool.key, this.options.probe.lockTtlMs);
      if (lock) {
        let outcome: PoolOutcome;
        try {
          // Someone may have published between our check and the lock.
          const fresh = await this.reusable(pool);
          if (fresh) {
            await this.reuse(pool, fresh);
            return;
          }
          outcome = await this.measure(pool, target, lock);
        } finally {
          await lock.release().catch(() => undefined);
        }
        if (outcome === 'settled') return;
      }
      if (!announcedWait) {
        announcedWait = true;
        pool.probeStatus = { state: 'waiting', startedAt: new Date().toISOString() };
        this.log(`${pool.key}: another worker is probing; waiting for its result`);
      }
      await this.sleep(PROBE_WAIT_POLL_MS);
    }
    this.markAborted(pool);
  }

  /** A stored result this app may use, or null. */
  private async reusable(pool: ResolvedPool): Promise<StoredProbeResult | null> {
    let stored: StoredProbeResult | null;
    try {
      stored = await this.store.getProbeResult(pool.key);
    } catch {
      return null;
    }
    if (!stored) return null;
    const measured = Date.parse(stored.measuredAt);
    if (!Number.isFinite(measured)) return null;
    if (this.options.forceReprobe && measured < this.bootedAt) return null;
    const ttl = this.options.probe.resultTtl;
    if (ttl > 0 && Date.now() - measured > ttl * 1000) return null;
    return stored;
  }

  private async reuse(pool: ResolvedPool, stored: StoredProbeResult): Promise<void> {
    await this.store.setCapacity(
      pool.key,
      stored.maxConcurrency * probeRequestUnits(pool),
      'probe',
    );
    // That probe is over: its token must not outlive it in this worker's cache.
    this.tokens.forget(pool.key);
    const now = new Date().toISOString();
    pool.probeStatus = {
      state: 'reused',
      startedAt: pool.probeStatus.startedAt ?? now,
      finishedAt: now,
    };
    this.log(
      `${pool.key}: capacity ${stored.maxConcurrency} (probe result from ${stored.measuredAt})`,
    );
  }

  private async measure(
    pool: ResolvedPool,
    loopback: LoopbackTarget,
    lock: { renew(): Promise<boolean> },
  ): Promise<PoolOutcome> {
    const startedAt = new Date().toISOString();
    const interim = await interimCapOf(this.store, pool.key);
    pool.probeStatus = { state: 'running', startedAt, interim };
    await this.store.setCapacity(pool.key, interim.capacity * probeRequestUnits(pool), 'probing');
    const slots = new ProbeSlots(this.store, pool, interim);
    this.log(
      `${pool.key}: probing ${pool.probe.method} ${pool.probe.path}; ` +
        `real requests admitted at ${interim.capacity} meanwhile (${interim.from})`,
    );

    const abort = new AbortController();
    const onStop = (): void => abort.abort();
    this.stopping.signal.addEventListener('abort', onStop);
    let lost = false;
    let token: MintedProbeToken | undefined;
    const renew = setInterval(() => {
      lock.renew().then(
        (ok) => {
          if (ok) {
            void token?.renew().catch(() => undefined);
          } else if (!abort.signal.aborted) {
            lost = true;
            abort.abort();
          }
        },
        () => undefined, // store unreachable: keep probing; the TTL decides
      );
    }, this.options.probe.lockTtlMs / 3);

    try {
      // Published with the lock and as long-lived: every worker lets these requests through.
      token = await this.tokens.mint(pool.key, this.options.probe.lockTtlMs);
      const target: ProbeTarget = {
        url: `${loopback.origin}${pool.probe.path}`,
        method: pool.probe.method,
        headers: { ...pool.probe.headers, [PROBE_HEADER]: token.value },
        body: pool.probe.body,
        socketPath: loopback.socketPath,
        insecureTls: loopback.insecureTls,
      };
      const result = await this.probe.probe(target, {
        ...this.options.probe,
        errorThreshold: this.options.errorThreshold,
        latencyThresholdMs: this.options.latencyThresholdMs,
        signal: abort.signal,
        slots,
        onLevel: (l) =>
          this.verbose(
            `${pool.key}: c=${l.concurrency} ${l.pass ? 'pass' : `fail (${l.failure})`} ` +
              `p99=${l.p99Ms}ms errors=${(l.errorRate * 100).toFixed(1)}% rps=${l.throughputRps}`,
          ),
      });
      // The report names the loopback URL; keep the route instead.
      const report = { ...result, target: `${pool.probe.method} ${pool.probe.path}` };
      await this.store.saveProbeResult(pool.key, {
        maxConcurrency: result.maxConcurrency,
        measuredAt: result.finishedAt,
        durationMs: result.durationMs,
        report,
      });
      // A costed pool's capacity is in units: the probed concurrency x one probe request's.
      await this.store.setCapacity(
        pool.key,
        result.maxConcurrency * probeRequestUnits(pool),
        'probe',
      );
      pool.probeStatus = { state: 'done', startedAt, finishedAt: new Date().toISOString() };
      this.log(
        `${pool.key}: capacity ${result.maxConcurrency} (probed in ${(result.durationMs / 1000).toFixed(1)} s, ` +
          `stop: ${result.stopReason}, ${result.levels.length} levels, ${result.requests} requests)`,
      );
      for (const w of result.warnings) this.logger.warn(`${pool.key}: ${w}`);
      return 'settled';
    } catch (err) {
      if (lost) {
        this.logger.warn(
          `${pool.key}: lost the probe lock to another worker; waiting for its result`,
        );
        return 'lost_lock';
      }
      if (err instanceof ProbeAbortedError || this.stopping.signal.aborted) {
        this.markAborted(pool);
        return 'settled';
      }
      const message = err instanceof ProbeError ? err.message : `unexpected error: ${String(err)}`;
      await this.fail(pool, message, startedAt, provenCapacity(err));
      return 'settled';
    } finally {
      clearInterval(renew);
      this.stopping.signal.removeEventListener('abort', onStop);
      await token?.withdraw();
    }
  }

  /**
   * A clear error, shown in stats and the log, with the capacity it leaves: `proven` (the
   * largest level the failed probe measured within the limits), 1 when there is none. A guess
   * above what was measured could be the level at which the backend fails.
   */
  private async fail(
    pool: ResolvedPool,
    message: string,
    startedAt?: string,
    proven = 0,
  ): Promise<void> {
    const cap = Math.max(1, proven);
    const error =
      `${message}. Capacity ${cap} (${proven > 0 ? 'the largest level proven within the limits' : 'no level was proven'}) ` +
      `until the probe succeeds: fix the cause and restart, or set a manual capacity`;
    pool.probeStatus = {
      state: 'failed',
      error,
      startedAt: startedAt ?? pool.probeStatus.startedAt,
      finishedAt: new Date().toISOString(),
    };
    if (this.options.logger) this.logger.error(`${pool.key}: probe failed: ${error}`);
    await this.store
      .setCapacity(pool.key, cap * probeRequestUnits(pool), 'default')
      .catch(() => undefined);
  }

  private markAborted(pool: ResolvedPool): void {
    pool.probeStatus = {
      state: 'failed',
      error: 'aborted: the application is shutting down',
      startedAt: pool.probeStatus.startedAt,
      finishedAt: new Date().toISOString(),
    };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.stopping.signal;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }

  private log(message: string): void {
    if (this.options.logger) this.logger.log(message);
  }

  private verbose(message: string): void {
    if (this.options.logger) this.logger.verbose(message);
  }
}

/**
 * Largest concurrency a failed probe measured within the limits, 0 when none. A level whose load
 * fell short (`load_short`) proved nothing.
 */
export function provenCapacity(err: unknown): number {
  if (!(err instanceof ProbeError) || err.reason === 'load_short') return 0;
  return Math.max(0, ...err.levels.filter((l) => l.pass).map((l) => l.concurrency));
}

/** The server's own address as reachable over loopback (`::`/`0.0.0.0` -> 127.0.0.1). */
export function loopbackOf(server: Server): LoopbackTarget {
  const insecureTls = server instanceof TlsServer;
  const protocol = insecureTls ? 'https' : 'http';
  const address = server.address() as AddressInfo | string | null;
  if (typeof address === 'string') {
    return { origin: `${protocol}://localhost`, socketPath: address, insecureTls };
  }
  if (!address) throw new Error('the HTTP server has no address');
  let host = address.address;
  if (host === '::' || host === '0.0.0.0' || host === '' || host === '::ffff:0.0.0.0')
    host = '127.0.0.1';
  if (host.includes(':')) host = `[${host}]`;
  return { origin: `${protocol}://${host}:${address.port}`, insecureTls };
}
