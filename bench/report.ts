/** Markdown pieces of docs/benchmarks.md. */

export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** ✅ / ❌ without emoji fonts: plain words read well in a terminal too. */
export function verdict(ok: boolean): string {
  return ok ? 'met' : '**missed**';
}

/** What one benchmark section produced: Markdown for the report and a one-line summary. */
export interface SectionResult {
  title: string;
  markdown: string;
  summary: string[];
}
