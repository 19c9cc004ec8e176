import 'reflect-metadata';
import { getMetadataStorage } from 'class-validator';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdmissionEvents } from '../../src/admission/admission-events';
import type {
  BalancerStats,
  BalancerStatsService,
} from '../../src/admission/balancer-stats.service';
import { AdaptiveOptions } from '../../src/config/adaptive-options';
import { BalancerOptions } from '../../src/config/balancer-options';
import { EndpointOptions } from '../../src/config/endpoint-options';
import { MetricsOptions } from '../../src/config/metrics-options';
import { ProbeTuningOptions } from '../../src/config/probe-options';
import type { ResolvedBalancerOptions } from '../../src/config/resolve-options';
import { StorageOptions } from '../../src/config/storage-options';
import { UiOptions } from '../../src/config/ui-options';
import { BalancerMetrics } from '../../src/dashboard/balancer-metrics.service';

/**
 * The reference pages agree with the code: every option PARAMS.md lists exists in the option
 * classes that validate it, every validated option has a PARAMS.md row, and every metric name
 * the docs mention is one the metrics service registers.
 */
const ROOT = join(__dirname, '..', '..');
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** PARAMS.md section -> the class whose validation metadata defines that section's options. */
const SECTIONS: Record<string, new () => object> = {
  'Top level': BalancerOptions,
  storage: StorageOptions,
  probe: ProbeTuningOptions,
  adaptive: AdaptiveOptions,
  ui: UiOptions,
  metrics: MetricsOptions,
  endpoints: EndpointOptions,
};

/** Rows that document something other than a validated property, and why. */
const NOT_IN_CLASS: Record<string, string[]> = {
  'Top level': ['isGlobal'], // a ConfigurableModuleBuilder extra of forRoot/forRootAsync
  adaptive: ['adaptive'], // the section's own key: the row says what the shorthand means
};

/** The options a class validates (class-validator metadata, inherited ones included). */
function validatedOptions(target: new () => object): Set<string> {
  const metas = getMetadataStorage().getTargetValidationMetadatas(target, '', true, false);
  return new Set(metas.map((m) => m.propertyName));
}

/** The first backticked name of each table row under `## <section>`, in PARAMS.md. */
function documentedOptions(section: string): Set<string> {
  const lines = read('PARAMS.md').split('\n');
  const start = lines.findIndex((l) => l.trim() === `## ${section}`);
  if (start < 0) throw new Error(`PARAMS.md has no section "## ${section}"`);
  const names = new Set<string>();
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    const m = /^\|\s*`([A-Za-z][A-Za-z0-9]*)`/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

describe('PARAMS.md matches the option classes', () => {
  it.each(Object.keys(SECTIONS))(
    'section "%s": every row exists and every option has a row',
    (section) => {
      const inClass = validatedOptions(SECTIONS[section]);
      const inDocs = documentedOptions(section);
      const extra = new Set(NOT_IN_CLASS[section] ?? []);
      const undocumented = [...inClass].filter((name) => !inDocs.has(name)).sort();
      const unknown = [...inDocs].filter((name) => !inClass.has(name) && !extra.has(name)).sort();
      expect({ undocumented, unknown }).toEqual({ undocumented: [], unknown: [] });
      // the allowance list itself stays true: each entry is documented and really not validated
      for (const name of extra) {
        expect(inDocs.has(name)).toBe(true);
        expect(inClass.has(name)).toBe(false);
      }
    },
  );
});

/** Every `balancer_*` metric name mentioned in the README, PARAMS.md, CHANGELOG.md or docs/. */
function metricNamesInDocs(): Map<string, string[]> {
  const files = [
    'README.md',
    'PARAMS.md',
    'CHANGELOG.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const found = new Map<string, string[]>();
  for (const file of files) {
    for (const m of read(file).matchAll(/\bbalancer_[a-z_]+[a-z]/g)) {
      const where = found.get(m[0]) ?? [];
      if (!where.includes(file)) where.push(file);
      found.set(m[0], where);
    }
  }
  return found;
}

/** The metric names the service registers, read from a real prom-client exposition. */
async function registeredMetricNames(): Promise<Set<string>> {
  const options = {
    metrics: { enable: true, serve: true, prefix: '', defaultLabels: {} },
    routePrefix: 'balancer',
    logger: false,
  } as unknown as ResolvedBalancerOptions;
  const stats: BalancerStats = {
    endpoints: {},
    healthy: true,
    shutting_down: false,
    store: { type: 'memory', reachable: true },
    worker: { pid: 1, hostname: 'docs' },
    generated_at: new Date(0).toISOString(),
  };
  const source = { snapshot: async () => stats } as unknown as BalancerStatsService;
  const metrics = new BalancerMetrics(options, source, new AdmissionEvents());
  metrics.onModuleInit();
  try {
    const text = (await metrics.render())!.text;
    const names = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      names.add(m[1]);
      // histograms expose _bucket/_sum/_count series under the one registered name
      if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1] + s);
    }
    return names;
  } finally {
    metrics.onModuleDestroy();
  }
}

describe('metric names in the docs', () => {
  it('are all registered by the metrics service', async () => {
    const registered = await registeredMetricNames();
    expect(registered.size).toBeGreaterThan(10);
    const mentioned = metricNamesInDocs();
    expect(mentioned.size).toBeGreaterThan(5);
    const unknown = [...mentioned]
      .filter(([name]) => !registered.has(name))
      .map(([name, files]) => `${name} (${files.join(', ')})`);
    expect(unknown).toEqual([]);
  });
});
