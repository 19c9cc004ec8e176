/**
 * K = 32 at S = 20 ms (the issue-19 time goal: under 10 s), external and in-app startup probe,
 * today's rules and the fixed 300 ms warm-up of earlier versions (`warmupLatencies: 0`) side by
 * side: `rounds` interleaved rounds (the order alternates each round), medians and spread.
 *
 *   BENCH_PROBE=k32 BENCH_ROUNDS=5 npm run bench -- probe
 */
import { loadavg } from 'node:os';

export interface K32Run {
  where: 'external' | 'startup';
  rule: 'today' | 'fixed-warmup';
  round: number;
  measured: number | null;
  stopReason: string;
  levels: number;
  requests: number;
  seconds: number;
  load: number;
}

export type K32Probe = (
  where: K32Run['where'],
  probe: { warmupLatencies?: number },
) => Promise<Omit<K32Run, 'where' | 'rule' | 'round' | 'load'>>;

const RULES: Record<K32Run['rule'], { warmupLatencies?: number }> = {
  today: {},
  'fixed-warmup': { warmupLatencies: 0 },
};

export async function runK32Rounds(probe: K32Probe, rounds: number): Promise<K32Run[]> {
  const runs: K32Run[] = [];
  for (let round = 1; round <= rounds; round++) {
    const rules: K32Run['rule'][] =
      round % 2 ? ['today', 'fixed-warmup'] : ['fixed-warmup', 'today'];
    for (const where of ['external', 'startup'] as const) {
      for (const rule of rules) {
        const load = loadavg()[0];
        const r = await probe(where, RULES[rule]);
        runs.push({ ...r, where, rule, round, load });
        console.error(
          `[probe k32] round ${round} ${where} ${rule}: K=${r.measured ?? 'error'} ` +
            `(${r.stopReason}, ${r.levels} levels, ${r.seconds.toFixed(1)} s, load ${load.toFixed(2)})`,
        );
      }
    }
  }
  return runs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function k32Table(runs: K32Run[]): string {
  const rows: string[] = [
    '| probe | rule | wall time: median | min – max | probed K (each round) | levels: median | requests: median |',
    '|---|---|---:|---:|---|---:|---:|',
  ];
  for (const where of ['external', 'startup'] as const) {
    for (const rule of ['today', 'fixed-warmup'] as const) {
      const rs = runs.filter((r) => r.where === where && r.rule === rule);
      if (!rs.length) continue;
      const secs = rs.map((r) => r.seconds);
      rows.push(
        `| ${where} | ${rule === 'today' ? "today's rules" : 'warm-up fixed 300 ms'} | ` +
          `${median(secs).toFixed(1)} s | ${Math.min(...secs).toFixed(1)} – ${Math.max(...secs).toFixed(1)} s | ` +
          `${rs.map((r) => r.measured ?? '—').join(', ')} | ${median(rs.map((r) => r.levels))} | ` +
          `${median(rs.map((r) => r.requests))} |`,
      );
    }
  }
  return rows.join('\n');
}
