import { join } from 'node:path';
import { SCENARIOS } from './scenarios';
import type { LoadName, OverloadConfig, ScenarioName } from './types';

/** Defaults and command line of `npm run bench:overload`. */

export const ALL_SCENARIOS = Object.keys(SCENARIOS) as ScenarioName[];
export const ALL_LOADS: LoadName[] = ['low', 'closed', 'open', 'tenants'];

export const DEFAULT_CONFIG: OverloadConfig = {
  k: 8,
  s: 50,
  durationS: 8,
  lowDurationS: 8,
  warmupS: 1,
  clients: 8,
  rate: 3,
  arrivals: 'poisson',
  queueTimeoutS: 1,
  queueTargetMs: null,
  scenarios: ALL_SCENARIOS,
  loads: ALL_LOADS,
  rounds: 3,
  capacity: 'probe',
  outDir: join(__dirname, '..', 'results'),
  verbose: false,
};

const FLAGS: Record<string, keyof OverloadConfig> = {
  k: 'k',
  s: 's',
  duration: 'durationS',
  'low-duration': 'lowDurationS',
  warmup: 'warmupS',
  clients: 'clients',
  rate: 'rate',
  arrivals: 'arrivals',
  'queue-timeout': 'queueTimeoutS',
  'queue-target': 'queueTargetMs',
  scenarios: 'scenarios',
  loads: 'loads',
  rounds: 'rounds',
  capacity: 'capacity',
  out: 'outDir',
};

export const USAGE = `npm run bench:overload -- [options]
  --k N               model slots K (default ${DEFAULT_CONFIG.k})
  --s MS              service time S in ms (default ${DEFAULT_CONFIG.s})
  --duration S        measured seconds per overload phase (default ${DEFAULT_CONFIG.durationS})
  --low-duration S    measured seconds of the low-load phase (default ${DEFAULT_CONFIG.lowDurationS})
  --warmup S          unmeasured seconds before each phase (default ${DEFAULT_CONFIG.warmupS})
  --clients M         closed loop: M x K clients (default ${DEFAULT_CONFIG.clients})
  --rate F            open loop and tenants: F x K/S arrivals per second (default ${DEFAULT_CONFIG.rate})
  --arrivals KIND     poisson | fixed (default ${DEFAULT_CONFIG.arrivals})
  --queue-timeout S   our queue timeout = HAProxy timeout queue (default ${DEFAULT_CONFIG.queueTimeoutS})
  --queue-target MS   queueTargetMs of the target scenarios (default 2 x S)
  --scenarios LIST    of ${ALL_SCENARIOS.join(',')} (default all)
  --loads LIST        of ${ALL_LOADS.join(',')} (default all; each scenario runs the ones it has)
  --rounds N          run every load N times, interleaved; report the median (default ${DEFAULT_CONFIG.rounds})
  --capacity KIND     probe | manual: balancer caps from the probe or K by hand (default ${DEFAULT_CONFIG.capacity})
  --out DIR           results directory (default bench/results); --no-write to skip
  --verbose           show the fixtures' output`;

function list<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const items = value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  const bad = items.filter((v) => !(allowed as readonly string[]).includes(v));
  if (bad.length)
    throw new Error(`--${flag}: unknown ${bad.join(', ')} (allowed: ${allowed.join(', ')})`);
  if (!items.length) throw new Error(`--${flag}: empty list`);
  return items as T[];
}

/** Parse `--flag value` / `--flag=value` arguments over the defaults. */
export function parseArgs(argv: string[]): OverloadConfig {
  const cfg: OverloadConfig = { ...DEFAULT_CONFIG };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (arg === '--verbose') {
      cfg.verbose = true;
      continue;
    }
    if (arg === '--no-write') {
      cfg.outDir = null;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = m ? FLAGS[m[1]] : undefined;
    if (!m || !key) throw new Error(`unknown argument ${arg}\n${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (key === 'scenarios') {
      cfg.scenarios = list(m[1], value, ALL_SCENARIOS);
    } else if (key === 'loads') {
      cfg.loads = list(m[1], value, ALL_LOADS);
    } else if (key === 'arrivals') {
      if (value !== 'poisson' && value !== 'fixed') throw new Error('--arrivals: poisson or fixed');
      cfg.arrivals = value;
    } else if (key === 'capacity') {
      if (value !== 'probe' && value !== 'manual') throw new Error('--capacity: probe or manual');
      cfg.capacity = value;
    } else if (key === 'outDir') {
      cfg.outDir = value;
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`--${m[1]} must be a positive number`);
      (cfg as unknown as Record<string, unknown>)[key] =
        key === 'k' || key === 'rounds' || key === 'queueTargetMs' ? Math.round(n) : n;
    }
  }
  return cfg;
}

/** The loads a scenario runs in this configuration, in the configured order. */
export function loadsOf(name: ScenarioName, cfg: OverloadConfig): LoadName[] {
  return cfg.loads.filter((l) => SCENARIOS[name].loads.includes(l));
}

/** Rough wall time of a run, seconds (startup and probe included). */
export function estimateSeconds(cfg: OverloadConfig): number {
  const overload = cfg.warmupS + cfg.durationS + cfg.queueTimeoutS;
  let perRound = cfg.loads.includes('low') ? cfg.warmupS + cfg.lowDurationS : 0;
  let startup = 0;
  for (const name of cfg.scenarios) {
    const loads = loadsOf(name, cfg);
    if (!loads.length) continue;
    perRound += loads.filter((l) => l !== 'low').length * overload;
    startup += SCENARIOS[name].front === 'balanced' && cfg.capacity === 'probe' ? 16 : 6;
  }
  return startup + cfg.rounds * perRound;
}
