import type { LoadName, PhaseResult, ScenarioName, ScenarioResult } from './types';

/** Reading the results of a run (shared by the report and the policy tables). */

export function phase(r: ScenarioResult | undefined, load: LoadName): PhaseResult | undefined {
  return r?.phases.find((p) => p.load === load);
}

/** The scenario's result when it ran. */
export function byName(results: ScenarioResult[], n: ScenarioName): ScenarioResult | undefined {
  return results.find((r) => r.name === n && !r.skipped);
}

export function signed(v: number, digits = 2): string {
  return `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
}

/** Answers other than 2xx, 503 and 504 (the model's 500s), by status; `0` when none. */
export function otherFailures(p: PhaseResult): string {
  const parts = Object.entries(p.byStatus)
    .filter(([s]) => !/^2/.test(s) && s !== '503' && s !== '504')
    .map(([s, n]) => `${s}: ${n}`);
  return parts.length ? parts.join(', ') : '0';
}
