import type { IncomingMessage } from 'node:http';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { HealthIndicatorFunction } from '@nestjs/terminus';
import { BalancerConfigError } from './balancer-config.error';
import {
  AdaptiveOptions,
  BalancerOptions,
  EndpointOptions,
  type BalancerModuleOptions,
  type MetricsRegistry,
} from './balancer-options';
import { deadlineConflicts } from './deadline-options';
import { costConflicts } from './cost-options';
import { overloadConflicts } from './overload-options';
import { resolveMetrics } from './resolve-metrics';
import { collect, isPlainObject, VALIDATE, type Locate } from './validation-report';
import { readBalancerYaml } from './yaml-config.loader';

/** Options after validation, with every default applied. Internal. */
export interface ResolvedBalancerOptions {
  storage: {
    type: 'memory' | 'redis';
    url?: string;
    redis?: Record<string, unknown>;
    client?: unknown;
    keyPrefix: string;
    leaseTtl: number;
    /** Seconds; `undefined`: 0.6 x leaseTtl (the store decides). */
    fallbackWindow?: number;
    /** Seconds; `undefined`: leaseTtl (the store decides). */
    restartHold?: number;
  };
  routingStrategy?: string;
  healthEndpoint: string | null;
  healthCheckInterval: number;
  healthTimeout: number;
  healthFailureThreshold: number;
  healthRecoveryThreshold: number;
  healthIndicators: HealthIndicatorFunction[];
  queueTimeout: number;
  maxQueue: number;
  /** Global default of `queueTargetMs` (ms); `undefined`: off. */
  queueTargetMs?: number;
  /** Global default of `deadlineHeader`; `undefined`: off. */
  deadlineHeader?: string;
  maxQueueBytes: number;
  bodyTimeout: number;
  bodyLingerMs: number;
  /** Which waiting uploads get interim `100 Continue` pings (see `BalancerOptions`). */
  waitingPings: 'auto' | 'always' | 'never';
  /** Which requests are admitted before their body is read (see `BalancerOptions`). */
  earlyAdmission: boolean | ((req: IncomingMessage) => boolean);
  /** `null`: the balancer registers no body parsers. */
  bodyParser: { limit: string | number; rawBody: boolean } | null;
  probeOnStartup: boolean;
  forceReprobe: boolean;
  errorThreshold: number;
  /** `undefined`: the relative rule (`probe.latencyFactor`, `probe.latencyFloorMs`). */
  latencyThresholdMs?: number;
  probe: {
    warmupMs: number;
    warmupLatencies: number;
    levelDurationMs: number;
    minSamples: number;
    maxConcurrency: number;
    maxRequests: number;
    /** `undefined`: derived from the level's latency limit (see `ProbeSettings`). */
    requestTimeoutMs?: number;
    stopAtKnee: boolean;
    kneeMinGain: number;
    throughputShare: number;
    levelLatencies: number;
    latencyFactor: number;
    latencyFloorMs: number;
    maxDurationMs: number;
    slowLatencyMs: number;
    resultTtl: number;
    lockTtlMs: number;
  };
  /** Global adaptive setting as given (`endpoints[path].adaptive` may override it). */
  adaptive: boolean | AdaptiveOptions;
  defaultCapacity: number;
  drainTimeout: number;
  ui: {
    enable: boolean;
    path: string;
    username?: string;
    password?: string;
    historySeconds: number;
  };
  metrics: {
    enable: boolean;
    serve: boolean;
    prefix: string;
    defaultLabels: Record<string, string>;
    registry?: MetricsRegistry;
  };
  /** Without leading or trailing slash: `balancer`, `ops/balancer`. */
  routePrefix: string;
  stats: boolean;
  endpoints: Record<string, EndpointOptions>;
  logger: boolean;
  admission: 'guard' | 'interceptor';
  /** `options` or the YAML file's path: named in messages. */
  source: string;
}

export const DEFAULTS = {
  storageType: 'memory',
  keyPrefix: 'balancer',
  leaseTtl: 5,
  healthEndpoint: '/health',
  healthCheckInterval: 10,
  healthTimeout: 2,
  healthFailureThreshold: 2,
  healthRecoveryThreshold: 1,
  queueTimeout: 30,
  maxQueue: 1000,
  maxQueueBytes: 100 * 1024 * 1024,
  bodyTimeout: 10,
  bodyLingerMs: 2000,
  waitingPings: 'auto' as const,
  bodyLimit: '100kb',
  probeOnStartup: true,
  forceReprobe: false,
  errorThreshold: 0.05,
  latencyFactor: 4,
  latencyFloorMs: 1000,
  maxDurationMs: 120_000,
  slowLatencyMs: 500,
  warmupMs: 300,
  warmupLatencies: 3,
  levelDurationMs: 1000,
  minSamples: 20,
  maxConcurrency: 256,
  maxRequests: 20000,
  stopAtKnee: true,
  kneeMinGain: 0.1,
  throughputShare: 0.95,
  levelLatencies: 10,
  resultTtl: 0,
  probeLockTtlMs: 15_000,
  defaultCapacity: 8,
  drainTimeout: 30,
  uiEnable: true,
  uiPath: '/balancer/ui',
  historySeconds: 300,
  metrics: true,
  routePrefix: 'balancer',
  stats: true,
  admission: 'guard' as const,
} as const;

/**
 * Validate options (or load and validate a YAML file) and fill in defaults.
 * Throws one `BalancerConfigError` that names every offending path.
 */
export function resolveBalancerOptions(
  input: BalancerModuleOptions | undefined,
): ResolvedBalancerOptions {
  let raw: unknown;
  let source = 'options';
  let locate: Locate = (p) => p.join('.');
  if (typeof input === 'string') {
    const loaded = readBalancerYaml(input);
    raw = loaded.options;
    source = loaded.source;
    locate = loaded.locate;
  } else {
    raw = input ?? {};
  }
  if (!isPlainObject(raw)) {
    throw new BalancerConfigError(source, [
      'options must be an object (or the path of a YAML file)',
    ]);
  }

  // Values that are live objects, not configuration data: keep them out of class-transformer.
  const { healthIndicators, earlyAdmission, endpoints, metrics, ...rest } = raw as Record<
    string,
    unknown
  >;
  const storageIn = isPlainObject(rest.storage) ? { ...rest.storage } : rest.storage;
  let client: unknown;
  if (isPlainObject(storageIn) && 'client' in storageIn) {
    client = storageIn.client;
    delete storageIn.client;
  }

  const problems: string[] = [];
  const opts = plainToInstance(BalancerOptions, { ...rest, storage: storageIn });
  collect(validateSync(opts, VALIDATE), [], locate, problems);

  if (healthIndicators !== undefined) {
    if (
      !Array.isArray(healthIndicators) ||
      !healthIndicators.every((f) => typeof f === 'function')
    ) {
      problems.push(
        `${locate(['healthIndicators'])} must be an array of Terminus indicator functions`,
      );
    }
  }
  if (
    earlyAdmission !== undefined &&
    typeof earlyAdmission !== 'boolean' &&
    typeof earlyAdmission !== 'function'
  ) {
    problems.push(
      `${locate(['earlyAdmission'])} must be true, false or a function (request) => boolean`,
    );
  }
  const he = opts.healthEndpoint;
  if (
    he !== undefined &&
    he !== null &&
    he !== false &&
    (typeof he !== 'string' || !he.startsWith('/'))
  ) {
    problems.push(
      `${locate(['healthEndpoint'])} must be a path starting with / (or false to disable)`,
    );
  }
  if (client !== undefined && (client === null || typeof client !== 'object')) {
    problems.push(`${locate(['storage', 'client'])} must be an ioredis client`);
  }
  if (
    opts.storage?.type === 'redis' &&
    !opts.storage.url &&
    !opts.storage.redis &&
    client === undefined
  ) {
    problems.push(`${locate(['storage'])}: type redis needs url, redis or client`);
  }
  const leaseTtl = opts.storage?.leaseTtl ?? DEFAULTS.leaseTtl;
  const fallbackWindow = opts.storage?.fallbackWindow;
  if (typeof fallbackWindow === 'number' && fallbackWindow >= leaseTtl) {
    problems.push(
      `${locate(['storage', 'fallbackWindow'])} (${fallbackWindow} s) must be shorter than storage.leaseTtl (${leaseTtl} s)`,
    );
  }
  const boundsOk = (a: unknown, path: string[]): void => {
    const o = a as AdaptiveOptions | boolean | undefined;
    if (o && typeof o === 'object' && o.min !== undefined && o.max !== undefined && o.min > o.max)
      problems.push(`${locate(path)}: min (${o.min}) must not exceed max (${o.max})`);
  };
  boundsOk(opts.adaptive, ['adaptive']);
  if (Boolean(opts.ui?.username) !== Boolean(opts.ui?.password)) {
    problems.push(`${locate(['ui'])}: set both username and password, or neither`);
  }

  const resolvedMetrics = resolveMetrics(metrics, locate, problems, DEFAULTS.metrics);
  if (opts.stats === false && opts.ui?.enable !== false) {
    problems.push(
      `${locate(['stats'])}: the dashboard reads the stats route; with stats: false set ui.enable: false too`,
    );
  }

  const resolvedEndpoints: Record<string, EndpointOptions> = {};
  if (endpoints !== undefined && endpoints !== null) {
    if (!isPlainObject(endpoints)) {
      problems.push(`${locate(['endpoints'])} must be a mapping of paths to endpoint settings`);
    } else {
      for (const [path, value] of Object.entries(endpoints)) {
        if (!path.startsWith('/')) {
          problems.push(
            `${locate(['endpoints', path])}: endpoint keys are paths and must start with /`,
          );
        }
        const entry = plainToInstance(EndpointOptions, value ?? {});
        if (value !== null && value !== undefined && !isPlainObject(value)) {
          problems.push(`${locate(['endpoints', path])} must be a mapping of endpoint settings`);
          continue;
        }
        collect(validateSync(entry, VALIDATE), ['endpoints', path], locate, problems);
        problems.push(...overloadConflicts(entry, locate(['endpoints', path])));
        problems.push(...deadlineConflicts(entry, locate(['endpoints', path])));
        problems.push(...costConflicts(entry, locate(['endpoints', path])));
        boundsOk(entry.adaptive, ['endpoints', path, 'adaptive']);
        if (entry.method) entry.method = entry.method.toUpperCase() as EndpointOptions['method'];
        resolvedEndpoints[path] = entry;
      }
    }
  }
  if (problems.length > 0) throw new BalancerConfigError(source, problems);

  const latencyThresholdMs = opts.latencyThresholdMs;
  const p = opts.probe ?? {};
  return {
    storage: {
      type: opts.storage?.type ?? DEFAULTS.storageType,
      url: opts.storage?.url,
      redis: opts.storage?.redis,
      client,
      keyPrefix: opts.storage?.keyPrefix ?? DEFAULTS.keyPrefix,
      leaseTtl: opts.storage?.leaseTtl ?? DEFAULTS.leaseTtl,
      fallbackWindow: opts.storage?.fallbackWindow,
      restartHold: opts.storage?.restartHold,
    },
    routingStrategy: opts.routingStrategy,
    healthEndpoint: he === false || he === null ? null : (he ?? DEFAULTS.healthEndpoint),
    healthCheckInterval: opts.healthCheckInterval ?? DEFAULTS.healthCheckInterval,
    healthTimeout: opts.healthTimeout ?? DEFAULTS.healthTimeout,
    healthFailureThreshold: opts.healthFailureThreshold ?? DEFAULTS.healthFailureThreshold,
    healthRecoveryThreshold: opts.healthRecoveryThreshold ?? DEFAULTS.healthRecoveryThreshold,
    healthIndicators: (healthIndicators as HealthIndicatorFunction[] | undefined) ?? [],
    queueTimeout: opts.queueTimeout ?? DEFAULTS.queueTimeout,
    maxQueue: opts.maxQueue ?? DEFAULTS.maxQueue,
    queueTargetMs: opts.queueTargetMs,
    deadlineHeader: opts.deadlineHeader,
    maxQueueBytes: opts.maxQueueBytes ?? DEFAULTS.maxQueueBytes,
    bodyTimeout: opts.bodyTimeout ?? DEFAULTS.bodyTimeout,
    bodyLingerMs: opts.bodyLingerMs ?? DEFAULTS.bodyLingerMs,
    waitingPings: opts.waitingPings ?? DEFAULTS.waitingPings,
    earlyAdmission:
      typeof earlyAdmission === 'function' || typeof earlyAdmission === 'boolean'
        ? (earlyAdmission as ResolvedBalancerOptions['earlyAdmission'])
        : true,
    bodyParser: resolveBodyParser(opts.bodyParser),
    probeOnStartup: opts.probeOnStartup ?? DEFAULTS.probeOnStartup,
    forceReprobe: opts.forceReprobe ?? DEFAULTS.forceReprobe,
    errorThreshold: opts.errorThreshold ?? DEFAULTS.errorThreshold,
    latencyThresholdMs,
    probe: {
      warmupMs: p.warmupMs ?? DEFAULTS.warmupMs,
      warmupLatencies: p.warmupLatencies ?? DEFAULTS.warmupLatencies,
      levelDurationMs: p.levelDurationMs ?? DEFAULTS.levelDurationMs,
      minSamples: p.minSamples ?? DEFAULTS.minSamples,
      maxConcurrency: p.maxConcurrency ?? DEFAULTS.maxConcurrency,
      maxRequests: p.maxRequests ?? DEFAULTS.maxRequests,
      requestTimeoutMs:
        p.requestTimeoutMs ??
        (latencyThresholdMs !== undefined ? latencyThresholdMs * 5 : undefined),
      stopAtKnee: p.stopAtKnee ?? DEFAULTS.stopAtKnee,
      kneeMinGain: p.kneeMinGain ?? DEFAULTS.kneeMinGain,
      throughputShare: p.throughputShare ?? DEFAULTS.throughputShare,
      levelLatencies: p.levelLatencies ?? DEFAULTS.levelLatencies,
      latencyFactor: p.latencyFactor ?? DEFAULTS.latencyFactor,
      latencyFloorMs: p.latencyFloorMs ?? DEFAULTS.latencyFloorMs,
      maxDurationMs: p.maxDurationMs ?? DEFAULTS.maxDurationMs,
      slowLatencyMs: p.slowLatencyMs ?? DEFAULTS.slowLatencyMs,
      resultTtl: p.resultTtl ?? DEFAULTS.resultTtl,
      lockTtlMs: p.lockTtlMs ?? DEFAULTS.probeLockTtlMs,
    },
    adaptive: opts.adaptive ?? false,
    defaultCapacity: opts.defaultCapacity ?? DEFAULTS.defaultCapacity,
    drainTimeout: opts.drainTimeout ?? DEFAULTS.drainTimeout,
    ui: {
      enable: opts.ui?.enable ?? DEFAULTS.uiEnable,
      path: normalizePath(opts.ui?.path ?? DEFAULTS.uiPath),
      username: opts.ui?.username,
      password: opts.ui?.password,
      historySeconds: opts.ui?.historySeconds ?? DEFAULTS.historySeconds,
    },
    metrics: resolvedMetrics,
    routePrefix: normalizeRoutePrefix(opts.routePrefix ?? DEFAULTS.routePrefix),
    stats: opts.stats ?? DEFAULTS.stats,
    endpoints: resolvedEndpoints,
    logger: opts.logger ?? true,
    admission: opts.admission ?? DEFAULTS.admission,
    source,
  };
}

function resolveBodyParser(
  value: BalancerOptions['bodyParser'],
): ResolvedBalancerOptions['bodyParser'] {
  if (!value) return null;
  const given = value === true ? {} : value;
  return { limit: given.limit ?? DEFAULTS.bodyLimit, rawBody: given.rawBody ?? false };
}

/** `/a//b/` -> `/a/b`; `/` stays `/`. */
export function normalizePath(path: string): string {
  const p = ('/' + path).replace(/\/+/g, '/');
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** `/ops/balancer/` -> `ops/balancer`. */
export function normalizeRoutePrefix(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, '');
}
