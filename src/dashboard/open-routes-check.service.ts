import { Inject, Injectable, Logger, OnApplicationBootstrap, RequestMethod } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core';
import type { AddressInfo, Server } from 'node:net';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import { excludedFromGlobalPrefix } from '../config/global-prefix';
import { normalizePath, type ResolvedBalancerOptions } from '../config/resolve-options';
import { loadPromClient } from './prom-client.loader';

/** `127.0.0.0/8`, `::1` and their IPv4-mapped form: reachable from this host only. */
export function isLoopback(address: string): boolean {
  const a = address.replace(/^::ffff:/i, '');
  return a === '::1' || a === 'localhost' || /^127\./.test(a);
}

/**
 * Warns once the server listens when the balancer's stats, history, metrics or dashboard are
 * served without credentials on an address other hosts can reach. They name the app's pools and
 * traffic; `0.0.0.0` (Nest's default with `listen(port)`) is every interface. The readiness
 * route (`/<routePrefix>/health`) is left out: it is open by design, credentials or not.
 */
@Injectable()
export class OpenRoutesCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('BalancerSecurity');

  constructor(
    @Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly appConfig: ApplicationConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.options.logger || this.openRoutes().length === 0) return;
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server || typeof server.once !== 'function') return; // not an HTTP app
    if (server.listening) this.check(server);
    else server.once('listening', () => this.check(server));
  }

  /**
   * The balancer's own routes anyone may read, as served: under the app's global prefix unless
   * `setGlobalPrefix(p, { exclude })` leaves them out, as Nest does for controllers and
   * middleware alike. All of them are GET routes.
   */
  openRoutes(): string[] {
    const o = this.options;
    if (o.ui.username && o.ui.password) return [];
    const base = `/${o.routePrefix}`;
    const open: string[] = [];
    if (o.stats) open.push(`${base}/stats`);
    // The dashboard's charts read it; it answers 404 while the dashboard is off.
    if (o.ui.enable) open.push(`${base}/history`);
    if (o.metrics.serve && loadPromClient()) open.push(`${base}/metrics`);
    if (o.ui.enable && o.ui.path !== '/') open.push(o.ui.path);
    return open.map((path) => this.served(path));
  }

  private served(path: string): string {
    const prefix = this.appConfig.getGlobalPrefix();
    if (!prefix || excludedFromGlobalPrefix(this.appConfig, path, RequestMethod.GET)) return path;
    return normalizePath(`${prefix}/${path}`);
  }

  private check(server: Server): void {
    const address = server.address() as AddressInfo | string | null;
    if (!address || typeof address === 'string' || isLoopback(address.address)) return;
    const where = ['0.0.0.0', '::'].includes(address.address)
      ? `every interface (${address.address}:${address.port})`
      : `${address.address}:${address.port}`;
    this.logger.warn(
      `${this.openRoutes().join(', ')} answer without credentials on ${where}: set ui.username ` +
        `and ui.password, turn them off (stats, metrics, ui.enable), or listen on 127.0.0.1`,
    );
  }
}
