/** What the benchmarks' reports share: order statistics, a text table and the goal marks. */

/** The nearest-rank quantile (an observed value, never an interpolation between two); NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** The median (the mean of the middle two of an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Rows of cells as aligned text columns, three spaces apart: the first `leftAligned` columns padded on
 * the right, the others (numbers) on the left. The first row sets the number of columns.
 */
export function table(rows: readonly (readonly string[])[], leftAligned = 1): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c < leftAligned ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   '),
    )
    .join('\n');
}

export const goalMark = (met: boolean): string => (met ? 'met' : 'MISSED');
