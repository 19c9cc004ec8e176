/** Markdown tables for benchmark reports. */
export function markdownTable(
  header: string[],
  rows: Array<Array<string | number>>,
  align?: Array<'l' | 'r'>,
): string {
  const cells = rows.map((r) => r.map(String));
  const sep = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [line(header), line(sep), ...cells.map(line)].join('\n');
}

/** `12.3` for ms; `-` when absent. */
export function fmtMs(ms: number | null | undefined, digits = 1): string {
  return ms === null || ms === undefined ? '-' : ms.toFixed(digits);
}
