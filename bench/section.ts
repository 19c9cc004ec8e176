/** One part of `npm run bench`: a titled markdown block and the raw figures. */
export interface BenchSection {
  title: string;
  markdown: string;
  data: unknown;
}
