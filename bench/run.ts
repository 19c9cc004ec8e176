/**
 * `npm run bench`: every benchmark in one run, printed and written to bench/results/latest.{md,json}.
 * `npm run bench -- overhead probe` runs only the named sections.
 * Speed claims live here, never in timed unit tests. The machines are shared and noisy: read
 * the ratios (measured side by side in the same run), not the absolute numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { BenchSection } from './section';

type Runner = () => Promise<BenchSection>;

const SECTIONS: Record<string, () => Promise<Runner>> = {
  overhead: async () => (await import('./overhead/admission-overhead')).runOverheadBench,
  redis: async () => (await import('./redis-roundtrips')).runRedisBench,
  probe: async () => (await import('./probe-accuracy')).runProbeAccuracyBench,
  real: async () => (await import('./real-workloads')).runRealWorkloadsBench,
  adaptive: async () => (await import('./adaptive-run')).runAdaptiveBench,
  costs: async () => (await import('./costs/index')).runCostAndDeadlineBench,
  deadlines: async () => (await import('./costs/deadlines')).runDeadlinesBench,
  overload: async () => {
    const { runOverloadBench } = await import('./overload');
    return () => runOverloadBench();
  },
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const names = wanted.length ? wanted : Object.keys(SECTIONS);
  const unknown = names.filter((n) => !(n in SECTIONS));
  if (unknown.length)
    throw new Error(
      `unknown section(s) ${unknown.join(', ')}; known: ${Object.keys(SECTIONS).join(', ')}`,
    );
  const results: BenchSection[] = [];
  for (const name of names) {
    console.error(`\n[bench] ${name} …`);
    const runner = await SECTIONS[name]();
    const section = await runner();
    results.push(section);
    console.log(`\n## ${section.title}\n\n${section.markdown}\n`);
  }
  const header = `Run ${new Date().toISOString()} on ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}.`;
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'latest.md'),
    [
      `# nestjs-balancer benchmarks`,
      '',
      header,
      '',
      ...results.map((s) => `## ${s.title}\n\n${s.markdown}\n`),
    ].join('\n'),
  );
  writeFileSync(join(dir, 'latest.json'), JSON.stringify({ header, sections: results }, null, 2));
  console.log(`written to bench/results/latest.md and latest.json`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
