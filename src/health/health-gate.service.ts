import {
  BeforeApplicationShutdown,
  HttpException,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost, ModuleRef } from '@nestjs/core';
import { HealthCheckService } from '@nestjs/terminus';
import type { Server } from 'node:http';
import { AdmissionGate } from '../admission/admission-gate';
import { ProbeTokens } from '../admission/probe-tokens';
import { BALANCER_OPTIONS, PROBE_HEADER } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { HealthFlapGuard } from './health-flap-guard';
import { httpHealthCheck, type HttpCheckResult } from './http-health-check';

/** Name of the health job in the host's `SchedulerRegistry`. */
export const HEALTH_INTERVAL_NAME = 'nestjs-balancer:health-check';

/**
 * State of the HTTP source.
 * - `off`: `healthEndpoint` is disabled, or the app has no HTTP server.
 * - `waiting`: no answer from the route yet (the server is not listening, or did not answer).
 * - `active`: the route answered something other than 404 at least once.
 * - `missing`: the first answer was 404; the source is dropped (never a permanent 503).
 */
export type HttpSourceState = 'off' | 'waiting' | 'active' | 'missing';

export interface HealthGateStatus {
  healthy: boolean;
  http: HttpSourceState;
  indicators: number;
  /** Completed checks since startup. */
  checks: number;
  consecutiveFailures: number;
  /** What failed in the last check (empty when it passed). */
  lastFailures: string[];
  scheduler: 'schedule' | 'timer' | 'none';
}

interface IntervalRegistry {
  addInterval(name: string, id: unknown): void;
  deleteInterval(name: string): void;
  doesExist(type: 'interval', name: string): boolean;
}

interface SourceOutcome {
  /** false when the source had nothing to check this time. */
  ran: boolean;
  failure?: string;
}

/**
 * Runs the health checks on a schedule and opens/closes the `AdmissionGate` of this process.
 * Sources: this app's own `healthEndpoint` over loopback HTTP, and Terminus indicator
 * functions from the options. Each process checks for itself; nothing is shared.
 */
@Injectable()
export class HealthGateService
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger('BalancerHealth');
  private readonly guard: HealthFlapGuard;
  private readonly abort = new AbortController();
  private httpState: HttpSourceState = 'off';
  private server?: Server;
  private timer?: NodeJS.Timeout;
  private registry?: IntervalRegistry;
  private onListening?: () => void;
  private running = false;
  private stopped = false;
  private checks = 0;
  private lastFailures: string[] = [];

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly gate: AdmissionGate,
    private readonly tokens: ProbeTokens,
    private readonly adapterHost: HttpAdapterHost,
    private readonly moduleRef: ModuleRef,
    private readonly terminus: HealthCheckService,
  ) {
    this.guard = new HealthFlapGuard(
      options.healthFailureThreshold,
      options.healthRecoveryThreshold,
    );
  }

  status(): HealthGateStatus {
    return {
      healthy: this.guard.healthy,
      http: this.httpState,
      indicators: this.options.healthIndicators.length,
      checks: this.checks,
      consecutiveFailures: this.guard.consecutiveFailures,
      lastFailures: [...this.lastFailures],
      scheduler: this.timer === undefined ? 'none' : this.registry ? 'schedule' : 'timer',
    };
  }

  async onApplicationBootstrap(): Promise<void> {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (this.options.healthEndpoint !== null && server && typeof server.once === 'function') {
      this.server = server;
      this.httpState = 'waiting';
    }
    if (this.httpState === 'off' && this.options.healthIndicators.length === 0) {
      const why =
        this.options.healthEndpoint === null
          ? 'health_endpoint is disabled'
          : 'this app has no HTTP server';
      this.log('log', `health gating is off (${why} and no health indicators are set)`);
      return;
    }
    await this.schedule();
    if (this.stopped) return;
    if (this.server) {
      // The first check runs as soon as the server listens, so a missing route is reported at startup.
      this.onListening = () => void this.tick();
      this.server.on('listening', this.onListening);
    }
    if (this.options.healthIndicators.length > 0 || this.server?.listening) void this.tick();
  }

  beforeApplicationShutdown(): void {
    this.stop();
  }

  onApplicationShutdown(): void {
    this.stop();
  }

  /** Run one check of every source now (also called by the schedule). */
  async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      const outcomes = await Promise.all([this.checkHttp(), this.checkIndicators()]);
      if (this.stopped || !outcomes.some((o) => o.ran)) return;
      this.checks++;
      this.lastFailures = outcomes.flatMap((o) => (o.failure ? [o.failure] : []));
      const flipped = this.guard.record(this.lastFailures.length === 0);
      if (flipped === false) {
        this.log(
          'warn',
          `health check failed ${this.guard.consecutiveFailures} time(s) in a row (${this.lastFailures.join('; ')}); ` +
            `watched routes answer 503 until ${this.options.healthRecoveryThreshold} check(s) pass`,
        );
        this.gate.setHealthy(false);
      } else if (flipped === true) {
        this.log('log', 'health check passed again; watched routes admit requests');
        this.gate.setHealthy(true);
      }
    } finally {
      this.running = false;
    }
  }

  private async checkHttp(): Promise<SourceOutcome> {
    const path = this.options.healthEndpoint;
    if (
      !this.server ||
      path === null ||
      (this.httpState !== 'waiting' && this.httpState !== 'active')
    ) {
      return { ran: false };
    }
    const result = await httpHealthCheck(this.server, {
      path,
      // The probe header lets the check through any admission in front of the health route.
      headers: { [PROBE_HEADER]: this.tokens.local, 'user-agent': 'nestjs-balancer-health' },
      timeoutMs: this.options.healthTimeout * 1000,
      signal: this.abort.signal,
    });
    if (result === null || this.stopped) return { ran: false };
    if (result.status === 404 && this.httpState === 'waiting') {
      this.httpState = 'missing';
      this.log(
        'warn',
        `GET ${path} answered 404: this app has no health route there, so the balancer does not gate on it. ` +
          `Add a route at ${path} (the served path, global prefix included), point health_endpoint ` +
          `(healthEndpoint) at your health route, or set health_endpoint: false to turn the HTTP check off.`,
      );
      if (this.options.healthIndicators.length === 0) this.stop();
      return { ran: false };
    }
    if (result.status !== undefined) this.httpState = 'active';
    return { ran: true, failure: result.ok ? undefined : `GET ${path}: ${describe(result)}` };
  }

  private async checkIndicators(): Promise<SourceOutcome> {
    const indicators = this.options.healthIndicators;
    if (indicators.length === 0) return { ran: false };
    const timeoutMs = this.options.healthTimeout * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`indicators gave no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.terminus.check(indicators), timeout]);
      return { ran: true };
    } catch (error) {
      return { ran: true, failure: describeIndicatorError(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  private async schedule(): Promise<void> {
    const registry = await this.schedulerRegistry();
    if (this.stopped) return;
    this.timer = setInterval(() => void this.tick(), this.options.healthCheckInterval * 1000);
    // The server keeps the process alive; this timer must not keep a closing app running.
    this.timer.unref();
    if (registry) {
      try {
        registry.addInterval(HEALTH_INTERVAL_NAME, this.timer);
        this.registry = registry;
      } catch {
        // The name is taken (a second BalancerModule): keep the plain timer.
      }
    }
  }

  /**
   * The host's `SchedulerRegistry` when it imported `ScheduleModule.forRoot()`. `@nestjs/schedule`
   * is an optional peer dependency, so it is loaded lazily and looked up, not injected.
   */
  private async schedulerRegistry(): Promise<IntervalRegistry | undefined> {
    let token: unknown;
    try {
      token = (await import('@nestjs/schedule')).SchedulerRegistry;
    } catch {
      return undefined;
    }
    try {
      return this.moduleRef.get(token as new () => IntervalRegistry, { strict: false });
    } catch {
      return undefined;
    }
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    if (this.onListening) this.server?.off('listening', this.onListening);
    if (this.timer) {
      if (this.registry?.doesExist('interval', HEALTH_INTERVAL_NAME)) {
        this.registry.deleteInterval(HEALTH_INTERVAL_NAME);
      }
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private log(level: 'log' | 'warn', message: string): void {
    if (this.options.logger) this.logger[level](message);
  }
}

function describe(result: HttpCheckResult): string {
  return result.status !== undefined ? `HTTP ${result.status}` : (result.error ?? 'failed');
}

function describeIndicatorError(error: unknown): string {
  if (error instanceof HttpException) {
    // HealthCheckService throws 503 with the Terminus result: name the indicators that are down.
    const body = error.getResponse() as { error?: Record<string, unknown> };
    const down = body && typeof body === 'object' && body.error ? Object.keys(body.error) : [];
    if (down.length > 0) return `indicator(s) down: ${down.join(', ')}`;
  }
  return `indicators: ${error instanceof Error ? error.message : String(error)}`;
}
