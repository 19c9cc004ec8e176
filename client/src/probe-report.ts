/**
 * The probe's level table, read defensively: the report is free-form JSON stored with the probe
 * result (`probe.report` in /balancer/stats), and older or foreign reports may name fields in
 * camelCase or snake_case, or lack some of them.
 */
export interface ProbeLevel {
  concurrency: number;
  requests: number | null;
  errors: number | null;
  errorRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  throughput: number | null;
  passed: boolean | null;
  /** Why the level failed: `errors` or `latency`. */
  failure: string | null;
  /** How long the level ran (warm-up + window), ms. */
  durationMs: number | null;
  /** Responses completed inside the measured window. */
  completions: number | null;
}

export interface ProbeReport {
  levels: ProbeLevel[];
  maxConcurrency: number | null;
  stopReason: string | null;
  latencyThresholdMs: number | null;
  errorThreshold: number | null;
  /** Knee estimate details when the step-up stopped at the knee. */
  knee: { peakThroughputRps: number | null; baseLatencyMs: number | null } | null;
  /** The chosen level's throughput as a share of the probe's peak (throughput-share rule). */
  choice: {
    throughputShare: number | null;
    peakThroughputRps: number | null;
    peakConcurrency: number | null;
  } | null;
  warnings: string[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function num(o: Obj, ...keys: string[]): number | null {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}

function str(o: Obj, ...keys: string[]): string | null {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'string' && v) return v;
  }
  return null;
}

function bool(o: Obj, ...keys: string[]): boolean | null {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'boolean') return v;
  }
  return null;
}

function level(o: Obj): ProbeLevel | null {
  const concurrency = num(o, 'concurrency', 'level', 'c');
  if (concurrency === null) return null;
  const requests = num(o, 'requests', 'samples', 'count');
  const errors = num(o, 'errors', 'failures');
  let errorRate = num(o, 'errorRate', 'error_rate');
  if (errorRate === null && requests && errors !== null) errorRate = errors / requests;
  return {
    concurrency,
    requests,
    errors,
    errorRate,
    p50Ms: num(o, 'p50Ms', 'p50_ms', 'p50'),
    p99Ms: num(o, 'p99Ms', 'p99_ms', 'p99'),
    throughput: num(o, 'throughput', 'throughputRps', 'throughput_rps', 'rps'),
    passed: bool(o, 'pass', 'passed', 'ok', 'withinBudget', 'within_budget'),
    failure: str(o, 'failure', 'reason'),
    durationMs: num(o, 'durationMs', 'duration_ms'),
    completions: num(o, 'completions'),
  };
}

/** `null` when there is no usable level table. */
export function readProbeReport(report: unknown): ProbeReport | null {
  const root: Obj | null = Array.isArray(report)
    ? { levels: report }
    : isObj(report)
      ? report
      : null;
  if (!root) return null;
  const raw = root.levels ?? root.steps ?? root.table;
  if (!Array.isArray(raw)) return null;
  const levels = raw
    .filter(isObj)
    .map(level)
    .filter((l): l is ProbeLevel => l !== null);
  if (levels.length === 0) return null;
  // One row per concurrency (a binary search may revisit one: keep the last measurement).
  const byC = new Map<number, ProbeLevel>();
  for (const l of levels) byC.set(l.concurrency, l);
  const thresholds = isObj(root.thresholds) ? root.thresholds : root;
  return {
    levels: [...byC.values()].sort((a, b) => a.concurrency - b.concurrency),
    maxConcurrency: num(root, 'maxConcurrency', 'max_concurrency', 'capacity'),
    stopReason: str(root, 'stopReason', 'stop_reason', 'reason'),
    latencyThresholdMs: num(thresholds, 'latencyThresholdMs', 'latency_threshold_ms'),
    errorThreshold: num(thresholds, 'errorThreshold', 'error_threshold'),
    knee: isObj(root.knee)
      ? {
          peakThroughputRps: num(root.knee, 'peakThroughputRps', 'peak_throughput_rps'),
          baseLatencyMs: num(root.knee, 'baseLatencyMs', 'base_latency_ms'),
        }
      : null,
    choice: isObj(root.choice)
      ? {
          throughputShare: num(root.choice, 'throughputShare', 'throughput_share'),
          peakThroughputRps: num(root.choice, 'peakThroughputRps', 'peak_throughput_rps'),
          peakConcurrency: num(root.choice, 'peakConcurrency', 'peak_concurrency'),
        }
      : null,
    warnings: Array.isArray(root.warnings)
      ? root.warnings.filter((w): w is string => typeof w === 'string')
      : [],
  };
}
