/**
 * `npm run bench -- costs`: the two benchmarks of cost and deadline admission in one section,
 * units first (count caps vs a unit cap on a token-budget model), then deadlines (model time
 * spent after the client gave up, FIFO vs deadline-aware). `npm run bench -- deadlines` runs
 * the second alone.
 */
import type { BenchSection } from '../section';
import { runDeadlinesBench } from './deadlines';
import { runCostsBench } from './units';

export async function runCostAndDeadlineBench(): Promise<BenchSection> {
  const units = await runCostsBench();
  const deadlines = await runDeadlinesBench();
  return {
    title: 'Cost units and deadlines',
    markdown: [
      `### ${units.title}`,
      '',
      units.markdown,
      '',
      `### ${deadlines.title}`,
      '',
      deadlines.markdown,
    ].join('\n'),
    data: { units: units.data, deadlines: deadlines.data },
  };
}
