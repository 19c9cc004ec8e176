import { Logger } from '@nestjs/common';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { BalancerOptions, EndpointOptions } from '../config/balancer-options';
import { resolveBalancerOptions } from '../config/resolve-options';
import { readBalancerYaml } from '../config/yaml-config.loader';
import { ProbeError, ProbeNoPathError } from './probe.errors';
import { ProbeService } from './probe.service';
import type { LevelStats, ProbeResult, ProbeSettings } from './probe.types';
import { BalancerYamlDocument } from '../config/yaml-writer';

/** Progress of a `BenchBalancer` run, for a progress display. */
export type BenchEvent =
  | { type: 'start'; endpoint: string; method: string; url: string }
  | { type: 'level'; endpoint: string; level: LevelStats }
  | { type: 'done'; endpoint: string; result: ProbeResult }
  | { type: 'failed'; endpoint: string; error: ProbeError };

export interface BenchBalancerOptions extends BalancerOptions {
  /** Where the live server answers, e.g. `http://localhost:3000`. Endpoint paths are appended. */
  baseUrl: string;
  /**
   * Probe settings for this run only (the CLI's flags); never written to the YAML.
   * They win over `errorThreshold`, `latencyThresholdMs` and `probe` from options and file.
   */
  overrides?: Partial<ProbeSettings>;
  /** Progress callback (start, each level, done/failed per endpoint). */
  onProgress?: (event: BenchEvent) => void;
  /** Cancels the run; endpoints not yet probed are reported as aborted. */
  signal?: AbortSignal;
  /** No log lines from BenchBalancer itself (the caller reports). */
  silent?: boolean;
}

export interface BenchEndpointResult {
  endpoint: string;
  ok: boolean;
  capacity?: number;
  result?: ProbeResult;
  error?: { reason: string; message: string };
}

export interface BenchReport {
  /** True when every endpoint was probed. */
  ok: boolean;
  endpoints: BenchEndpointResult[];
  /** The file written. */
  file: string;
  /** Credentials that were not written because the file did not already hold them. */
  skippedCredentials: string[];
}

/** Option keys that are not configuration: never validated as options, never written. */
const RUN_ONLY_KEYS = ['baseUrl', 'overrides', 'onProgress', 'signal', 'silent'] as const;

/**
 * Probes a live server from outside and writes the measured capacities into a `balancer.yml`.
 *
 * ```ts
 * await new BenchBalancer({ baseUrl: 'http://localhost:3000', latencyThresholdMs: 5000 }).run('balancer.yml');
 * ```
 * Endpoints come from the YAML file and from `endpoints` (which win per key). The file is
 * edited in place (or written to `out`): comments, key order and every other key survive, and
 * only `capacity` (plus the options given here) is written. A password, token or
 * Authorization header the file does not already hold is never written.
 *
 * The target should not itself gate the probed routes (run it without the balancer, or with
 * `probe_on_startup: false` and a high manual capacity), or the probe measures that gate.
 */
export class BenchBalancer {
  private readonly logger = new Logger(BenchBalancer.name);

  constructor(
    private readonly options: BenchBalancerOptions,
    private readonly probeService: ProbeService = new ProbeService(),
  ) {
    if (!options.baseUrl || !/^https?:\/\//.test(options.baseUrl)) {
      throw new Error(
        `BenchBalancer: baseUrl must be an http:// or https:// URL (got ${String(options.baseUrl)})`,
      );
    }
  }

  /**
   * Probe every endpoint and write `capacity` into `path` (or `out`). The file may be missing
   * (it is created). `only` limits the run to some endpoint keys. Resolves with the report;
   * `report.ok` is false when any endpoint failed.
   */
  async run(path: string, out: string = path, only?: string[]): Promise<BenchReport> {
    const { doc, fileOptions } = this.load(path);
    const config = this.configOptions();
    const effective: BalancerOptions = {
      ...fileOptions,
      ...config,
      endpoints: mergeEndpoints(fileOptions.endpoints, config.endpoints),
    };
    const resolved = resolveBalancerOptions(effective as BalancerOptions);
    const o = this.options.overrides ?? {};
    const settings: Partial<ProbeSettings> = {
      ...resolved.probe,
      errorThreshold: resolved.errorThreshold,
      latencyThresholdMs: resolved.latencyThresholdMs,
      ...definedOnly(o),
    };
    // An explicit latency threshold without a request timeout keeps the 5x rule.
    if (
      o.latencyThresholdMs !== undefined &&
      o.requestTimeoutMs === undefined &&
      effective.probe?.requestTimeoutMs === undefined
    ) {
      settings.requestTimeoutMs = o.latencyThresholdMs * 5;
    }

    const unknown = (only ?? []).filter((k) => !(k in resolved.endpoints));
    if (unknown.length > 0) {
      throw new Error(`no such endpoint in ${path}: ${unknown.join(', ')}`);
    }
    if (Object.keys(resolved.endpoints).length === 0) {
      throw new Error(
        `no endpoints to probe: add them under endpoints: in ${path} or to the options`,
      );
    }
    const results: BenchEndpointResult[] = [];
    for (const [endpoint, e] of Object.entries(resolved.endpoints)) {
      if (only && !only.includes(endpoint)) continue;
      results.push(await this.probeOne(endpoint, e, settings));
    }

    doc.mergeOptions(config as Record<string, unknown>);
    for (const r of results)
      if (r.ok && r.capacity !== undefined) doc.setCapacity(r.endpoint, r.capacity);
    writeFileSync(out, doc.toString());
    this.warnSkipped(doc.skipped);
    return {
      ok: results.every((r) => r.ok),
      endpoints: results,
      file: out,
      skippedCredentials: [...doc.skipped],
    };
  }

  /** Write the options given here (capacities included) into `path` without probing. */
  toYaml(path: string): string[] {
    const { doc } = this.load(path);
    const config = this.configOptions();
    resolveBalancerOptions(config as BalancerOptions); // same validation as the module
    doc.mergeOptions(config as Record<string, unknown>);
    writeFileSync(path, doc.toString());
    this.warnSkipped(doc.skipped);
    return [...doc.skipped];
  }

  private async probeOne(
    endpoint: string,
    e: EndpointOptions,
    settings: Partial<ProbeSettings>,
  ): Promise<BenchEndpointResult> {
    const emit = this.options.onProgress ?? (() => undefined);
    const path = e.path ?? (endpoint.includes(':') || endpoint.includes('*') ? null : endpoint);
    const method = e.method ?? 'GET';
    const url = `${this.options.baseUrl.replace(/\/+$/, '')}${path ?? endpoint}`;
    emit({ type: 'start', endpoint, method, url });
    try {
      if (path === null) throw new ProbeNoPathError(endpoint);
      const result = await this.probeService.probe(
        { url, method, headers: e.headers, body: e.body },
        {
          ...settings,
          signal: this.options.signal,
          onLevel: (level) => emit({ type: 'level', endpoint, level }),
        },
      );
      emit({ type: 'done', endpoint, result });
      return { endpoint, ok: true, capacity: result.maxConcurrency, result };
    } catch (err) {
      const error = err instanceof ProbeError ? err : new ProbeError('unreachable', String(err));
      emit({ type: 'failed', endpoint, error });
      return { endpoint, ok: false, error: { reason: error.reason, message: error.message } };
    }
  }

  private load(path: string): { doc: BalancerYamlDocument; fileOptions: BalancerOptions } {
    if (!existsSync(path)) return { doc: BalancerYamlDocument.empty(), fileOptions: {} };
    // Validate the file as the module would (errors name the file and line), then read it.
    resolveBalancerOptions(path);
    const fileOptions = readBalancerYaml(path).options;
    return { doc: BalancerYamlDocument.parse(readFileSync(path, 'utf8')), fileOptions };
  }

  /** The constructor's options minus the run-only keys: what may be written to the file. */
  private configOptions(): BalancerOptions {
    const copy: Record<string, unknown> = { ...this.options };
    for (const k of RUN_ONLY_KEYS) delete copy[k];
    return copy as BalancerOptions;
  }

  private warnSkipped(skipped: string[]): void {
    if (skipped.length === 0 || this.options.silent || this.options.logger === false) return;
    this.logger.warn(
      `not written to the YAML (credentials the file did not hold): ${skipped.join(', ')}; ` +
        `add them yourself or supply them at runtime`,
    );
  }
}

function mergeEndpoints(
  file: Record<string, EndpointOptions> | undefined,
  given: Record<string, EndpointOptions> | undefined,
): Record<string, EndpointOptions> {
  const out: Record<string, EndpointOptions> = { ...(file ?? {}) };
  for (const [k, v] of Object.entries(given ?? {})) {
    const base = out[k] ?? {};
    out[k] = { ...base, ...v, headers: { ...(base.headers ?? {}), ...(v.headers ?? {}) } };
  }
  return out;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
