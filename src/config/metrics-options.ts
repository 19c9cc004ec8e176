import 'reflect-metadata';
import { IsBoolean, IsObject, IsOptional, IsString, Matches } from 'class-validator';

/**
 * The parts of a prom-client `Registry` the balancer uses. Declared here so the published
 * types never require prom-client (an optional peer); prom-client's `Registry` fits it.
 */
export interface MetricsRegistry {
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
  getSingleMetric(name: string): unknown;
  metrics(): Promise<string>;
  readonly contentType: string;
}

export class MetricsOptions {
  /** Collect Prometheus metrics (when prom-client is installed). @default true */
  @IsOptional()
  @IsBoolean()
  enable?: boolean;

  /**
   * Serve them at `GET /<routePrefix>/metrics`. Turn it off when they go into your own
   * registry, already scraped at your app's `/metrics`.
   * @default true without `registry`, false with one
   */
  @IsOptional()
  @IsBoolean()
  serve?: boolean;

  /**
   * Prepended to every metric name: `'myapp_'` gives `myapp_balancer_capacity`.
   * @default ''
   */
  @IsOptional()
  @IsString()
  @Matches(/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/, {
    message: '$property must be a Prometheus name prefix (letters, digits, _ and :)',
  })
  prefix?: string;

  /** Labels added to every balancer series (`{ service: 'scoring' }`). @default {} */
  @IsOptional()
  @IsObject()
  defaultLabels?: Record<string, string>;

  /**
   * A prom-client `Registry` of your app to register into (e.g. prom-client's default
   * `register`, the one `@willsoto/nestjs-prometheus` serves), instead of a private one.
   * The balancer removes its metrics from it at shutdown. TypeScript only.
   */
  @IsOptional()
  registry?: MetricsRegistry;
}
