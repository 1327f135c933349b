import type { SummaryWindow } from '@wsmon/contracts';
import type { ResultResponse } from '../results/results.service';
import { LatencyHistogram, type LatencyStats } from './latency-histogram';
import type { RawUnitRow, RollupRow } from './aggregation.repository';

export type { LatencyStats } from './latency-histogram';

/** One bucket of a summary's time series. */
export interface SeriesPointResponse {
  /** The bucket's start (aligned to the step since the epoch; the first may start before the window). */
  start_time: string;
  runs: number;
  failures: number;
  /** Percentage of runs that succeeded; null without runs. */
  uptime_pct: number | null;
  handshake_ms: LatencyStats;
  round_trip_ms: LatencyStats;
}

/** What the results of a window add up to, at one location or at all. */
export interface WindowStatsResponse {
  runs: number;
  failures: number;
  uptime_pct: number | null;
  /** Milliseconds until the WebSocket was open, of the runs where it opened. */
  handshake_ms: LatencyStats;
  /** Milliseconds of the first message round trip, of the runs that measured one. */
  round_trip_ms: LatencyStats;
  /** Most frequent first (then by name); a failure without a reason counts as `unknown`. */
  failure_reasons: { reason: string; count: number }[];
  failure_categories: { category: string; count: number }[];
  /** By code. */
  close_codes: { code: number; count: number }[];
  /** Runs that received a close code. */
  closes: number;
  /** Closes with 1006, 1011, 1012 or 1013. */
  abnormal_closes: number;
  /** abnormal_closes / closes; null without closes. */
  abnormal_close_rate: number | null;
  /** The latest result in the window; null when there is none (or its raw result is past retention). */
  last_result: ResultResponse | null;
  series: SeriesPointResponse[];
}

export interface LocationSummaryResponse {
  /** The location's name; null once the location is deleted. */
  location: string | null;
  location_id: string;
  stats: WindowStatsResponse;
}

/** `GET /api/v1/tests/{id}/summary`. */
export interface TestSummaryResponse {
  test_id: string;
  /** The named window asked for; null for an explicit range. */
  window: SummaryWindow | null;
  /** The window summarised (RFC 3339): `from` inclusive, `to` exclusive. */
  from: string;
  to: string;
  /** Seconds per series bucket. */
  step_s: number;
  /** Relative precision of every latency percentile (the maxima are exact). */
  latency_precision: number;
  /** All locations together. */
  overall: WindowStatsResponse;
  /** Each location of the test, and any other with results in the window, by name. */
  locations: LocationSummaryResponse[];
}

/** The figures of one cell (a location or all, a series bucket or the whole window), before formatting. */
export interface CellFigures {
  runs: number;
  failures: number;
  abnormalCloses: number;
  reasons: Map<string, number>;
  categories: Map<string, number>;
  closeCodes: Map<string, number>;
  handshake: LatencyStats;
  roundTrip: LatencyStats;
}

const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n);

/** A cell being summed from rollup rows and raw results. */
export class Cell {
  runs = 0;
  failures = 0;
  abnormalCloses = 0;
  readonly reasons = new Map<string, number>();
  readonly categories = new Map<string, number>();
  readonly closeCodes = new Map<string, number>();
  readonly handshake = new LatencyHistogram();
  readonly roundTrip = new LatencyHistogram();

  addRollup(row: RollupRow): void {
    this.runs += row.runs;
    this.failures += row.failures;
    this.abnormalCloses += row.abnormal_closes;
    for (const [key, n] of Object.entries(row.failure_reasons)) add(this.reasons, key, n);
    for (const [key, n] of Object.entries(row.failure_categories)) add(this.categories, key, n);
    for (const [key, n] of Object.entries(row.close_codes)) add(this.closeCodes, key, n);
    this.handshake.addText(row.handshake_buckets, row.handshake_counts, row.handshake_max_ms);
    this.roundTrip.addText(row.round_trip_buckets, row.round_trip_counts, row.round_trip_max_ms);
  }

  addRaw(row: RawUnitRow, abnormal: ReadonlySet<number>): void {
    this.runs++;
    if (!row.success) {
      this.failures++;
      add(this.reasons, row.reason ?? 'unknown', 1);
      add(this.categories, row.category ?? 'unknown', 1);
    }
    if (row.close_code !== null) {
      add(this.closeCodes, String(row.close_code), 1);
      if (abnormal.has(row.close_code)) this.abnormalCloses++;
    }
    if (row.handshake_bucket !== null) this.handshake.addOne(row.handshake_bucket, row.open_ms!);
    if (row.round_trip_bucket !== null) this.roundTrip.addOne(row.round_trip_bucket, row.round_trip_ms!);
  }

  merge(other: Cell): void {
    this.runs += other.runs;
    this.failures += other.failures;
    this.abnormalCloses += other.abnormalCloses;
    for (const [key, n] of other.reasons) add(this.reasons, key, n);
    for (const [key, n] of other.categories) add(this.categories, key, n);
    for (const [key, n] of other.closeCodes) add(this.closeCodes, key, n);
    this.handshake.merge(other.handshake);
    this.roundTrip.merge(other.roundTrip);
  }

  figures(): CellFigures {
    return {
      runs: this.runs,
      failures: this.failures,
      abnormalCloses: this.abnormalCloses,
      reasons: this.reasons,
      categories: this.categories,
      closeCodes: this.closeCodes,
      handshake: this.handshake.stats(),
      roundTrip: this.roundTrip.stats(),
    };
  }
}

export const EMPTY_LATENCY: LatencyStats = {
  count: 0,
  p50: null,
  p90: null,
  p95: null,
  p99: null,
  max: null,
};

export const emptyFigures = (): CellFigures => ({
  runs: 0,
  failures: 0,
  abnormalCloses: 0,
  reasons: new Map(),
  categories: new Map(),
  closeCodes: new Map(),
  handshake: EMPTY_LATENCY,
  roundTrip: EMPTY_LATENCY,
});

const uptime = (runs: number, failures: number) => (runs ? (100 * (runs - failures)) / runs : null);

const byCount = (a: [string, number], b: [string, number]) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1);

/** The JSON of one location's (or all locations') window: totals, its series and its latest result. */
export function windowStats(
  total: CellFigures,
  series: readonly CellFigures[],
  seriesStart: number,
  stepMs: number,
  lastResult: ResultResponse | null,
): WindowStatsResponse {
  let closes = 0;
  for (const n of total.closeCodes.values()) closes += n;
  return {
    runs: total.runs,
    failures: total.failures,
    uptime_pct: uptime(total.runs, total.failures),
    handshake_ms: total.handshake,
    round_trip_ms: total.roundTrip,
    failure_reasons: [...total.reasons].sort(byCount).map(([reason, count]) => ({ reason, count })),
    failure_categories: [...total.categories].sort(byCount).map(([category, count]) => ({ category, count })),
    close_codes: [...total.closeCodes]
      .map(([code, count]) => ({ code: Number(code), count }))
      .sort((a, b) => a.code - b.code),
    closes,
    abnormal_closes: total.abnormalCloses,
    abnormal_close_rate: closes ? total.abnormalCloses / closes : null,
    last_result: lastResult,
    series: series.map((cell, i) => ({
      start_time: new Date(seriesStart + i * stepMs).toISOString(),
      runs: cell.runs,
      failures: cell.failures,
      uptime_pct: uptime(cell.runs, cell.failures),
      handshake_ms: cell.handshake,
      round_trip_ms: cell.roundTrip,
    })),
  };
}
