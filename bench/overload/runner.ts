import { loadavg } from 'node:os';
import { fmtMs } from '../lib/table';
import { loadsOf } from './config';
import { failure } from './http';
import { runLowPhase, runPhase } from './phases';
import { setUp, tearDown, type Live } from './scenarios';
import type { OverloadConfig, PhaseResult, ScenarioResult } from './types';

/**
 * Every scenario is started first (one after another, so probes do not compete), then the
 * phases run interleaved: for each round and load, each scenario that runs the load in turn
 * (order rotated per round), so machine noise hits them alike. The median round per scenario
 * and load is what the tables show.
 */

/**
 * The round shown: the median by goodput (closed, open), by mean latency (low), or by the
 * light group's p50 (tenants: the number that load is about).
 */
export function medianRound(rounds: PhaseResult[]): PhaseResult {
  const key = (p: PhaseResult): number => {
    if (p.load === 'low') return p.latency.meanMs ?? Infinity;
    if (p.load === 'tenants') return p.groups?.light.latency.p50Ms ?? Infinity;
    return p.goodput;
  };
  const sorted = [...rounds].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function describe(p: PhaseResult): string {
  const rejected = p.rejectedLatency.count
    ? `, rejected p50 ${fmtMs(p.rejectedLatency.p50Ms)} ms`
    : '';
  const groups = p.groups
    ? `; light p50 ${fmtMs(p.groups.light.latency.p50Ms)} ms, heavy p50 ${fmtMs(p.groups.heavy.latency.p50Ms)} ms`
    : '';
  return (
    `${p.goodput.toFixed(1)} 2xx/s, p50 ${fmtMs(p.latency.p50Ms)} p99 ${fmtMs(p.latency.p99Ms)} ms, ` +
    `${JSON.stringify(p.byStatus)}${rejected}${groups}, lost ${p.lost}; CPU % gen ` +
    `${p.cpu.generator} ${JSON.stringify(p.cpu.byFixture)} machine ${p.cpu.machine}; ` +
    `tcp ${JSON.stringify(p.cpu.tcp)}; app loop ${JSON.stringify(p.appLoops)}`
  );
}

function addError(live: Live, message: string): void {
  live.result.errors = [...(live.result.errors ?? []), message];
}

async function lowRound(
  active: Live[],
  round: number,
  cfg: OverloadConfig,
  log: (s: string) => void,
): Promise<void> {
  const runs = active.filter((l) => loadsOf(l.result.name, cfg).includes('low'));
  if (!runs.length) return;
  try {
    const results = await runLowPhase(runs, cfg);
    for (const [live, p] of results) {
      p.round = round;
      p.boxLoad = loadavg()[0];
      live.result.rounds.push(p);
      log(
        `  round ${round} ${live.result.name}/low: mean ${fmtMs(p.latency.meanMs, 2)} ` +
          `p50 ${fmtMs(p.latency.p50Ms, 2)} p99 ${fmtMs(p.latency.p99Ms, 2)} ms, ${p.ok} ok, ` +
          `${JSON.stringify(p.byStatus)}, lost ${p.lost}; machine ${p.cpu.machine}`,
      );
    }
  } catch (err) {
    for (const live of runs) addError(live, `low round ${round}: ${failure(err)}`);
    log(`  low: ${failure(err)}`);
  }
}

export async function runScenarios(
  cfg: OverloadConfig,
  log: (s: string) => void,
): Promise<ScenarioResult[]> {
  const lives: Live[] = [];
  try {
    for (const name of cfg.scenarios) {
      if (!loadsOf(name, cfg).length) {
        log(`  ${name}: not run (none of its loads selected)`);
        continue;
      }
      lives.push(await setUp(name, cfg, log));
    }
    const active = lives.filter((l) => !l.result.skipped);
    for (let round = 1; round <= cfg.rounds; round++) {
      for (const load of cfg.loads) {
        if (load === 'low') {
          await lowRound(active, round, cfg, log);
          continue;
        }
        const runs = active.filter((l) => loadsOf(l.result.name, cfg).includes(load));
        const order = runs.map((_, i) => runs[(i + round - 1) % runs.length]);
        for (const live of order) {
          const { name } = live.result;
          try {
            const p = await runPhase(load, live, cfg);
            p.round = round;
            p.boxLoad = loadavg()[0];
            live.result.rounds.push(p);
            log(
              `  round ${round} ${name}/${load} (box load ${p.boxLoad.toFixed(2)}): ${describe(p)}`,
            );
          } catch (err) {
            addError(live, `${load} round ${round}: ${failure(err)}`);
            log(`  ${name}/${load}: ${failure(err)}`);
          }
        }
      }
    }
    for (const live of active) {
      for (const load of cfg.loads) {
        const rounds = live.result.rounds.filter((p) => p.load === load);
        if (rounds.length) live.result.phases.push(medianRound(rounds));
      }
    }
  } finally {
    for (const live of [...lives].reverse()) await tearDown(live);
  }
  return lives.map((l) => l.result);
}
