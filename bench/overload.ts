import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { PROBE_PROVIDERS } from '../src/probe/probe.parts';
import { DEFAULT_CONFIG, estimateSeconds, parseArgs } from './overload/config';
import { haproxyBinary } from './overload/http';
import { policySummary } from './overload/policies';
import { checkTargets, render } from './overload/report';
import { runScenarios } from './overload/runner';
import type { OverloadConfig } from './overload/types';

/**
 * `npm run bench:overload`: what happens when offered load is several times what the endpoint
 * can take. Each scenario has its own simulated model process (K slots, service time S,
 * thrashing above K, 500s at 3 x K) that the Nest app(s) call over loopback HTTP, so one worker
 * or two, every scenario drives one model with K slots and pays the same hop:
 *
 *   plain         the Nest app, unprotected
 *   memory        the same app with BalancerModule.forRoot (memory store, capacity from the probe)
 *   manual        the same with capacity K set by hand (the mechanism without the probe's estimate)
 *   redis         Redis store, 2 worker processes on two ports (round-robin per request)
 *   haproxy       the unprotected app behind HAProxy `maxconn K` with `timeout queue` = ours
 *   target        memory with `queueTargetMs` (2 x S unless --queue-target)
 *   redis-target  redis with `queueTargetMs`
 *   tenant        memory with `tenantHeader: 'x-api-key'`
 *
 * Loads: `closed` (clients x K closed-loop clients), `open` (rate x K/S Poisson arrivals per
 * second) and `tenants` (the open-loop rate split 10:1 between a heavy and a light tenant) per
 * scenario, interleaved; `low` (K/4 clients per scenario, every request to the next scenario in
 * turn: added latency). Each scenario runs the loads that say something about it
 * (overload/scenarios.ts). Results: bench/results/overload-latest.{md,json}.
 * docs/performance.md explains how to read them. The parts live in bench/overload/.
 */

export { DEFAULT_CONFIG, estimateSeconds, parseArgs } from './overload/config';
export type {
  LoadName,
  OverloadConfig,
  PhaseResult,
  ScenarioName,
  ScenarioResult,
  TargetCheck,
} from './overload/types';

/** Run the overload benchmark; used by `npm run bench:overload` and by bench/run.ts. */
export async function runOverloadBench(
  args?: Partial<OverloadConfig> | string[],
): Promise<{ title: string; markdown: string; data: unknown }> {
  const cfg: OverloadConfig = Array.isArray(args)
    ? parseArgs(args)
    : { ...DEFAULT_CONFIG, ...args };
  const log = (s: string): void => console.error(s);
  log(
    `overload bench: K=${cfg.k} S=${cfg.s} ms, scenarios ${cfg.scenarios.join(',')}, loads ${cfg.loads.join(',')} ` +
      `(about ${Math.round(estimateSeconds(cfg))} s)`,
  );
  if (PROBE_PROVIDERS.length === 0)
    log(
      '  note: the startup probe is not built yet; balancer scenarios use capacity K set by hand',
    );
  const results = await runScenarios(cfg, log);
  const checks = checkTargets(results, cfg);
  const title = `Overload: goodput under ${cfg.clients} x K clients and ${cfg.rate} x K/S arrivals`;
  const markdown = render(results, checks, cfg);
  const data = {
    generatedAt: new Date().toISOString(),
    config: cfg,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      haproxy: haproxyVersion(),
    },
    probeBuilt: PROBE_PROVIDERS.length > 0,
    policies: policySummary(results, cfg),
    scenarios: results,
    targets: checks,
  };
  if (cfg.outDir) {
    await mkdir(cfg.outDir, { recursive: true });
    await writeFile(join(cfg.outDir, 'overload-latest.md'), `## ${title}\n\n${markdown}\n`);
    await writeFile(join(cfg.outDir, 'overload-latest.json'), JSON.stringify(data, null, 2) + '\n');
  }
  return { title, markdown, data };
}

function haproxyVersion(): string | null {
  const bin = haproxyBinary();
  if (!bin) return null;
  try {
    return execFileSync(bin, ['-v'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return null;
  }
}

if (require.main === module) {
  let cfg: OverloadConfig;
  try {
    cfg = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  // Bounded in time whatever happens: the children die with us (IPC) and by the exit hook.
  const watchdog = setTimeout(
    () => {
      console.error('overload bench: watchdog expired, stopping');
      process.exit(1);
    },
    (estimateSeconds(cfg) * 2 + 180) * 1000,
  );
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  runOverloadBench(cfg)
    .then(({ title, markdown }) => {
      console.log(`\n## ${title}\n\n${markdown}\n`);
      if (cfg.outDir) console.log(`written: ${join(cfg.outDir, 'overload-latest.md')} and .json`);
      process.exit(0);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
