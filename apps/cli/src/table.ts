/** A column of {@link renderTable}: its heading, and whether its cells line up on the right (numbers). */
export interface Column {
  readonly heading: string;
  readonly align?: 'left' | 'right';
}

/**
 * Plain text columns separated by two spaces, headings in capitals, as kubectl prints lists; cells are
 * printed as given (line breaks become spaces), the last column is not padded.
 */
export function renderTable(
  columns: readonly (Column | string)[],
  rows: readonly (readonly string[])[],
): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { heading: c } : c));
  const clean = (cell: string | undefined) => (cell ?? '').replace(/[\r\n\t]+/g, ' ');
  const lines = [
    cols.map((c) => c.heading.toUpperCase()),
    ...rows.map((row) => cols.map((_, i) => clean(row[i]))),
  ];
  const widths = cols.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)));
  return lines
    .map((line) =>
      line
        .map((cell, i) => {
          if (i === cols.length - 1 && cols[i]!.align !== 'right') return cell;
          return cols[i]!.align === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
        })
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** Milliseconds as the tables show them: `12.3 ms`, `1.20 s`; empty when not measured. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** An RFC 3339 time as the tables show it: UTC to the second, `2025-11-21 08:15:03Z`. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}
