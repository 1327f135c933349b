/**
 * Which data a summary reads: the coarsest rollups that cover its window, the finer ones at its ragged
 * edges and past what is rolled up, and raw results only for what no rollup covers. Pure: the times are
 * epoch milliseconds.
 */

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

export type RollupLevel = 'day' | 'hour' | 'minute';
export type Source = RollupLevel | 'raw';

export const LEVEL_MS: Readonly<Record<RollupLevel, number>> = {
  day: DAY_MS,
  hour: HOUR_MS,
  minute: MINUTE_MS,
};
const COARSEST_FIRST: readonly RollupLevel[] = ['day', 'hour', 'minute'];

/** How far each rollup resolution is complete (rollup_state): buckets that end by then are in it. */
export interface Watermarks {
  readonly minute: number;
  readonly hour: number;
  readonly day: number;
}

/** A test's data not yet in its rollups: epoch milliseconds, undefined when there is none. */
export interface NotRolledUp {
  /** The earliest slot of its results still in the rollup queue (stored, their minute not recomputed). */
  readonly queuedFrom?: number;
  /** The earliest hour, and day, waiting to be recomputed from their finer rollups. */
  readonly pendingHourFrom?: number;
  readonly pendingDayFrom?: number;
}

/**
 * The watermarks as far as one test's rollups are up to date: a result that arrived late (its slot below
 * the minute watermark) is read raw, with everything after it, until a round has rolled it up, and an
 * hour or day waiting to be recomputed is read from finer data. A summary then counts every stored result.
 */
export function testWatermarks(watermarks: Watermarks, behind: NotRolledUp): Watermarks {
  const cap = (t: number | undefined, unit: number) => (t === undefined ? Infinity : floorTo(t, unit));
  const { queuedFrom, pendingHourFrom, pendingDayFrom } = behind;
  return {
    minute: Math.min(watermarks.minute, cap(queuedFrom, MINUTE_MS)),
    hour: Math.min(watermarks.hour, cap(queuedFrom, HOUR_MS), cap(pendingHourFrom, HOUR_MS)),
    day: Math.min(
      watermarks.day,
      cap(queuedFrom, DAY_MS),
      cap(pendingHourFrom, DAY_MS),
      cap(pendingDayFrom, DAY_MS),
    ),
  };
}

/** The oldest instant each source still holds (what retention has not deleted). */
export type Horizons = Readonly<Record<Source, number>>;

/** A part of the window, [from, to), read from one source. */
export interface Fragment {
  readonly source: Source;
  readonly from: number;
  readonly to: number;
}

export interface SummaryPlan {
  /** The window actually summarised: the one asked for, its edges rounded inwards where raw results are gone. */
  readonly from: number;
  readonly to: number;
  /** The length of a time-series bucket; buckets are aligned to multiples of it since the epoch (UTC). */
  readonly stepMs: number;
  /** Disjoint, covering [from, to) in order. */
  readonly fragments: readonly Fragment[];
}

/**
 * Series steps by window length: a few dozen to a hundred-odd points, each a whole number of the buckets
 * read (5m and 1h by minute, 24h by hour, 7d by 6 hours, 30d and 90d by day).
 */
const STEPS: readonly { readonly upToMs: number; readonly stepMs: number }[] = [
  { upToMs: 3 * HOUR_MS, stepMs: MINUTE_MS },
  { upToMs: 3 * DAY_MS, stepMs: HOUR_MS },
  { upToMs: 15 * DAY_MS, stepMs: 6 * HOUR_MS },
];

export function seriesStep(spanMs: number): number {
  return STEPS.find((s) => spanMs <= s.upToMs)?.stepMs ?? DAY_MS;
}

export const floorTo = (t: number, unit: number): number => Math.floor(t / unit) * unit;
const ceilTo = (t: number, unit: number) => Math.ceil(t / unit) * unit;

/** The finest unit of data at instant t: 1 ms (raw results), else the finest rollup kept, else none. */
function finestUnitAt(t: number, horizons: Horizons): number | undefined {
  if (t >= horizons.raw) return 1;
  for (const level of ['minute', 'hour', 'day'] as const) if (t >= horizons[level]) return LEVEL_MS[level];
  return undefined;
}

/**
 * The plan of a summary of [from, to). Edges older than the raw results kept are rounded inwards to the
 * finest rollup kept there (a 90-day window starts at a whole minute); the step is at least that unit.
 */
export function planSummary(
  from: number,
  to: number,
  watermarks: Watermarks,
  horizons: Horizons,
): SummaryPlan {
  const fromUnit = finestUnitAt(from, horizons);
  const effectiveFrom = fromUnit === undefined ? ceilTo(horizons.day, DAY_MS) : ceilTo(from, fromUnit);
  const toUnit = finestUnitAt(to, horizons) ?? DAY_MS;
  const effectiveTo = Math.max(effectiveFrom, floorTo(to, toUnit));
  const stepMs = Math.max(seriesStep(effectiveTo - effectiveFrom), fromUnit ?? DAY_MS, toUnit);
  const fragments: Fragment[] = [];
  cover(effectiveFrom, effectiveTo, 0, stepMs, watermarks, horizons, fragments);
  return { from: effectiveFrom, to: effectiveTo, stepMs, fragments };
}

/** Appends to `out` the fragments covering [a, b), from the level `COARSEST_FIRST[i]` down to raw. */
function cover(
  a: number,
  b: number,
  i: number,
  stepMs: number,
  watermarks: Watermarks,
  horizons: Horizons,
  out: Fragment[],
): void {
  if (a >= b) return;
  const level = COARSEST_FIRST[i];
  if (level === undefined) {
    out.push({ source: 'raw', from: a, to: b });
    return;
  }
  const unit = LEVEL_MS[level];
  // A bucket is read whole or not at all, must fall within one series step, be rolled up and be kept.
  const start = ceilTo(Math.max(a, horizons[level]), unit);
  const end = Math.min(floorTo(b, unit), floorTo(watermarks[level], unit));
  if (unit > stepMs || start >= end) {
    cover(a, b, i + 1, stepMs, watermarks, horizons, out);
    return;
  }
  cover(a, start, i + 1, stepMs, watermarks, horizons, out);
  out.push({ source: level, from: start, to: end });
  cover(end, b, i + 1, stepMs, watermarks, horizons, out);
}
