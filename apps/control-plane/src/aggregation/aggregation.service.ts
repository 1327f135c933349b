import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  DEFAULT_SUMMARY_WINDOW,
  SUMMARY_WINDOWS,
  testSummaryQuerySchema,
  type SummaryWindow,
} from '@wsmon/contracts';
import { NotFoundError } from '../common/errors';
import { isUuid, validated } from '../common/validation';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { resultResponse, type ResultResponse } from '../results/results.service';
import {
  ABNORMAL_CLOSE_CODES,
  AggregationRepository,
  type LastResultRow,
  type RawCellRow,
  type RoundLimits,
} from './aggregation.repository';
import { LATENCY_PRECISION, type LatencyStats } from './latency-histogram';
import {
  DAY_MS,
  floorTo,
  HOUR_MS,
  MINUTE_MS,
  planSummary,
  type Horizons,
  type RollupLevel,
  type SummaryPlan,
} from './summary-plan';
import {
  Cell,
  EMPTY_LATENCY,
  emptyFigures,
  windowStats,
  type CellFigures,
  type LocationSummaryResponse,
  type TestSummaryResponse,
} from './test-summary';

/**
 * Days each rollup resolution is kept. Minutes outlive the longest summary window (90 days), so that any
 * window's edges are exact to the minute; hours and days serve older explicit ranges. Minutes must also
 * outlive the latest a result may arrive (31 days, ResultsService's SLOT_WINDOW_MS): an hour is recomputed
 * from all its minutes.
 */
export const ROLLUP_RETENTION_DAYS: Readonly<Record<RollupLevel, number>> = {
  minute: 90,
  hour: 400,
  day: 800,
};

/** How often each replica tries to roll up (one at a time does), when it has no backlog. */
const ROLLUP_INTERVAL_MS = 10_000;
const RETENTION_INTERVAL_MS = HOUR_MS;
/**
 * Hours and days are rolled up once they ended this long ago, when their results have usually arrived;
 * a result arriving later is rolled up again with its hour and day (it is queued like any other).
 */
const CLOSE_GRACE_MS = 2 * MINUTE_MS;
const ROUND_LIMITS: RoundLimits = { results: 20_000, buckets: 20_000 };
/** What one periodic roll-up does at most before leaving the rest to the next. */
const ROLLUP_BUDGET: RollupBudget = { rounds: 50, ms: 5_000 };
/** Replicas' clocks may differ: a day is dropped this long after it passed the retention. */
const RAW_RETENTION_MARGIN_MS = HOUR_MS;
const ROLLUP_RETENTION_MARGIN_MS = DAY_MS;
const DELETE_BATCH_ROWS = 10_000;
const DELETE_MAX_BATCHES = 100;
const ABNORMAL = new Set<number>(ABNORMAL_CLOSE_CODES);

export interface RollupBudget {
  readonly rounds: number;
  readonly ms: number;
}

/** The periodic roll-up's pace: how often it starts, what it does at most each time and per round. */
export interface RollupPace {
  readonly intervalMs: number;
  readonly budget: RollupBudget;
  readonly round: RoundLimits;
}

export interface RollupOutcome {
  rounds: number;
  /** Results taken from the queue. */
  results: number;
  /** Rollup rows written by resolution. */
  minutes: number;
  hours: number;
  days: number;
  /** Everything queued before the last round is rolled up. */
  complete: boolean;
  /** Another replica was rolling up. */
  skipped: boolean;
}

export interface RetentionOutcome {
  /** Partitions of `results` dropped. */
  partitions: string[];
  /** Rollup rows deleted by resolution. */
  rollups: Record<RollupLevel, number>;
}

/** A summary and how it was computed. */
export interface SummaryComputation {
  summary: TestSummaryResponse;
  plan: SummaryPlan;
  /** Rows read: rollup rows by resolution, and raw results. */
  rowsRead: Record<RollupLevel | 'raw', number>;
}

interface Resolved {
  readonly testId: string;
  readonly window: SummaryWindow | null;
  readonly plan: SummaryPlan;
  readonly locationIds: readonly string[];
  readonly filterLocationId: string | undefined;
}

/**
 * Per-location aggregation: rolls results up by minute, hour and day, answers summaries of any window
 * from the rollups (raw results only at the window's ragged edges), and keeps results and rollups for
 * their retention. REST and gRPC both call this.
 */
@Injectable()
export class AggregationService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('aggregation');
  private readonly retentionDays: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastRetention = 0;
  private stopped = false;
  /** Tests slow it down, to see a backlog worked off. */
  pace: RollupPace = { intervalMs: ROLLUP_INTERVAL_MS, budget: ROLLUP_BUDGET, round: ROUND_LIMITS };

  constructor(
    private readonly repository: AggregationRepository,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'resultsRetentionDays'>,
  ) {
    this.retentionDays = config.resultsRetentionDays;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.tick(), this.pace.intervalMs).unref();
    // What was queued while no replica ran is rolled up now, not one interval later.
    setImmediate(() => this.tick());
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  private tick(): void {
    if (this.running || this.stopped) return;
    let behind = false;
    this.running = (async () => {
      const rolled = await this.rollUp(Date.now(), this.pace.budget);
      behind = !rolled.complete && !rolled.skipped;
      if (Date.now() - this.lastRetention >= RETENTION_INTERVAL_MS) {
        // After the roll-up: a day is dropped only once what was queued of it is rolled up.
        const outcome = await this.applyRetention();
        this.lastRetention = Date.now();
        if (outcome.partitions.length) {
          this.logger.log(`retention: dropped ${outcome.partitions.join(', ')}`);
        }
      }
    })()
      .catch((error: unknown) => this.logger.warn(`rolling up failed (retried shortly): ${String(error)}`))
      .finally(() => {
        this.running = undefined;
        // A backlog (ingest faster than one budget per interval) is worked off without waiting for the
        // next interval; the budget only gives the event loop and the retention their turn.
        if (behind) setImmediate(() => this.tick());
      });
  }

  // ---------- rolling up and retention ----------

  /**
   * Rolls up what was stored since the last time, in rounds, until nothing is left or the budget is spent:
   * the minutes of the queued results from all their results, then the hours and days that ended at least
   * two minutes before `now` and whose minutes (hours) changed. Every replica may call it: one at a time
   * works, the others return at once (`skipped`).
   */
  async rollUp(now = Date.now(), budget: RollupBudget = this.pace.budget): Promise<RollupOutcome> {
    const through = {
      minute: floorTo(now, MINUTE_MS),
      hour: floorTo(now - CLOSE_GRACE_MS, HOUR_MS),
      day: floorTo(now - CLOSE_GRACE_MS, DAY_MS),
    };
    const started = Date.now();
    const outcome: RollupOutcome = {
      rounds: 0,
      results: 0,
      minutes: 0,
      hours: 0,
      days: 0,
      complete: false,
      skipped: false,
    };
    while (outcome.rounds < budget.rounds) {
      const round = await this.repository.rollUpRound(through, this.pace.round);
      outcome.rounds++;
      if (round.skipped) {
        outcome.skipped = true;
        break;
      }
      outcome.results += round.results;
      outcome.minutes += round.minutes;
      outcome.hours += round.hours;
      outcome.days += round.days;
      if (round.complete) {
        outcome.complete = true;
        break;
      }
      if (Date.now() - started >= budget.ms) break;
    }
    return outcome;
  }

  /**
   * Drops the days of raw results past `WSMON_RESULTS_RETENTION_DAYS` (whole partitions), and deletes
   * rollups past {@link ROLLUP_RETENTION_DAYS}.
   */
  async applyRetention(now = Date.now()): Promise<RetentionOutcome> {
    const partitions = await this.repository.dropPartitionsBefore(
      now - this.retentionDays * DAY_MS - RAW_RETENTION_MARGIN_MS,
    );
    const rollups: Record<RollupLevel, number> = { minute: 0, hour: 0, day: 0 };
    for (const level of ['minute', 'hour', 'day'] as const) {
      const before = now - ROLLUP_RETENTION_DAYS[level] * DAY_MS - ROLLUP_RETENTION_MARGIN_MS;
      for (let batch = 0; batch < DELETE_MAX_BATCHES; batch++) {
        const deleted = await this.repository.deleteRollupsBefore(level, before, DELETE_BATCH_ROWS);
        rollups[level] += deleted;
        if (deleted < DELETE_BATCH_ROWS) break;
      }
    }
    return { partitions, rollups };
  }

  /** The oldest instant each source is sure to hold at `now`. */
  private horizons(now: number): Horizons {
    return {
      raw: now - this.retentionDays * DAY_MS,
      minute: now - ROLLUP_RETENTION_DAYS.minute * DAY_MS,
      hour: now - ROLLUP_RETENTION_DAYS.hour * DAY_MS,
      day: now - ROLLUP_RETENTION_DAYS.day * DAY_MS,
    };
  }

  // ---------- summaries ----------

  /** A test's summary for a window (query: `window`, or `from` and `to`; `location`), from the rollups. */
  async summary(testId: string, query: unknown, now = Date.now()): Promise<TestSummaryResponse> {
    return (await this.computeSummary(testId, query, now)).summary;
  }

  /** {@link summary}, with the plan it followed and the rows it read. */
  async computeSummary(testId: string, query: unknown, now = Date.now()): Promise<SummaryComputation> {
    const resolved = await this.resolve(testId, query, now);
    const { plan } = resolved;
    const [rollups, raw, lastRows] = await Promise.all([
      this.repository.readRollups(testId, plan.fragments, resolved.filterLocationId),
      this.repository.readRawUnits(testId, plan.fragments, resolved.filterLocationId),
      this.lastResults(resolved, resolved.locationIds),
    ]);
    const rowsRead = { ...rollups.read, raw: raw.length };
    const { start, points } = seriesOf(plan);
    const byLocation = new Map<string, Cell[]>();
    const cellAt = (locationId: string, at: number): Cell => {
      let cells = byLocation.get(locationId);
      if (!cells) byLocation.set(locationId, (cells = new Array<Cell>(points)));
      return (cells[Math.floor((at - start) / plan.stepMs)] ??= new Cell());
    };
    for (const row of rollups.rows) cellAt(row.location_id, row.at).addRollup(row);
    for (const row of raw) cellAt(row.location_id, row.at).addRaw(row, ABNORMAL);

    const overallSeries = Array.from({ length: points }, () => new Cell());
    const overall = new Cell();
    const perLocation = new Map<string, { total: CellFigures; series: CellFigures[] }>();
    for (const [locationId, cells] of byLocation) {
      const total = new Cell();
      const series: CellFigures[] = [];
      for (let i = 0; i < points; i++) {
        const cell = cells[i];
        if (!cell) {
          series.push(emptyFigures());
          continue;
        }
        total.merge(cell);
        overallSeries[i]!.merge(cell);
        series.push(cell.figures());
      }
      overall.merge(total);
      perLocation.set(locationId, { total: total.figures(), series });
    }
    const summary = await this.assemble(
      resolved,
      lastRows,
      overall.figures(),
      overallSeries.map((c) => c.figures()),
      perLocation,
    );
    return { summary, plan, rowsRead };
  }

  /**
   * The same summary computed exactly from the raw results alone (percentile_disc, no histogram): the
   * reference the rollups are tested against, slow on long windows. Its window and series are those
   * {@link summary} would use; raw results past retention are missing from it.
   */
  async summaryFromRaw(testId: string, query: unknown, now = Date.now()): Promise<TestSummaryResponse> {
    const resolved = await this.resolve(testId, query, now);
    const { plan } = resolved;
    const { start, points } = seriesOf(plan);
    const [{ cells, counts }, lastRows] = await Promise.all([
      this.repository.rawAggregates(
        testId,
        new Date(plan.from),
        new Date(plan.to),
        plan.stepMs,
        resolved.filterLocationId,
      ),
      this.lastResults(resolved, resolved.locationIds),
    ]);
    const ALL = '*';
    const totals = new Map<string, CellFigures>();
    const series = new Map<string, CellFigures[]>();
    const seriesFor = (key: string) => {
      let list = series.get(key);
      if (!list) series.set(key, (list = Array.from({ length: points }, emptyFigures)));
      return list;
    };
    for (const row of cells) {
      const key = row.location_id ?? ALL;
      const figures = rawFigures(row);
      if (row.at === null) totals.set(key, figures);
      else seriesFor(key)[Math.floor((row.at.getTime() - start) / plan.stepMs)] = figures;
    }
    for (const row of counts) {
      const figures = totals.get(row.location_id ?? ALL);
      if (!figures) continue;
      const map =
        row.kind === 'reason'
          ? figures.reasons
          : row.kind === 'category'
            ? figures.categories
            : figures.closeCodes;
      map.set(row.key, row.count);
    }
    const perLocation = new Map<string, { total: CellFigures; series: CellFigures[] }>();
    for (const [key, total] of totals) {
      if (key !== ALL) perLocation.set(key, { total, series: seriesFor(key) });
    }
    return this.assemble(resolved, lastRows, totals.get(ALL) ?? emptyFigures(), seriesFor(ALL), perLocation);
  }

  private async resolve(testId: string, query: unknown, now: number): Promise<Resolved> {
    const q = validated(testSummaryQuerySchema, query);
    if (!isUuid(testId)) throw new NotFoundError('test', testId);
    const context = await this.repository.summaryContext(testId, q.location);
    if (!context.testExists) throw new NotFoundError('test', testId);
    if (q.location !== undefined && context.filterLocationId === null) {
      throw new NotFoundError('location', q.location);
    }
    const window = q.window ?? (q.from === undefined ? DEFAULT_SUMMARY_WINDOW : null);
    const to = window === null && q.to !== undefined ? Date.parse(q.to) : now;
    const from = window === null ? Date.parse(q.from!) : to - SUMMARY_WINDOWS[window];
    return {
      testId,
      window,
      plan: planSummary(from, to, context.watermarks, this.horizons(now)),
      locationIds: context.filterLocationId === null ? context.locationIds : [context.filterLocationId],
      filterLocationId: context.filterLocationId ?? undefined,
    };
  }

  private lastResults(resolved: Resolved, locationIds: readonly string[]): Promise<LastResultRow[]> {
    const { plan } = resolved;
    return this.repository.lastResults(resolved.testId, locationIds, new Date(plan.from), new Date(plan.to));
  }

  /**
   * The response: every location of the test (whose last results are `known`) and any other with results
   * in the window, each with its latest result.
   */
  private async assemble(
    resolved: Resolved,
    known: readonly LastResultRow[],
    overall: CellFigures,
    overallSeries: CellFigures[],
    perLocation: ReadonlyMap<string, { total: CellFigures; series: CellFigures[] }>,
  ): Promise<TestSummaryResponse> {
    const { plan } = resolved;
    const { start, points } = seriesOf(plan);
    const others = [...perLocation.keys()].filter((id) => !resolved.locationIds.includes(id));
    const lastRows = others.length ? [...known, ...(await this.lastResults(resolved, others))] : known;
    const emptySeries = Array.from({ length: points }, emptyFigures);
    let latest: ResultResponse | null = null;
    const locations: LocationSummaryResponse[] = [];
    for (const row of lastRows) {
      const last = lastResult(resolved.testId, row);
      if (last && (latest === null || last.slot_time > latest.slot_time)) latest = last;
      const figures = perLocation.get(row.locationId);
      locations.push({
        location: row.locationName,
        location_id: row.locationId,
        stats: windowStats(
          figures?.total ?? emptyFigures(),
          figures?.series ?? emptySeries,
          start,
          plan.stepMs,
          last,
        ),
      });
    }
    locations.sort(
      (a, b) =>
        (a.location === null ? 1 : 0) - (b.location === null ? 1 : 0) ||
        (a.location ?? '').localeCompare(b.location ?? '') ||
        a.location_id.localeCompare(b.location_id),
    );
    return {
      test_id: resolved.testId,
      window: resolved.window,
      from: new Date(plan.from).toISOString(),
      to: new Date(plan.to).toISOString(),
      step_s: plan.stepMs / 1000,
      latency_precision: LATENCY_PRECISION,
      overall: windowStats(overall, overallSeries, start, plan.stepMs, latest),
      locations,
    };
  }
}

/** The series of a plan: buckets aligned to the step, from the one holding `from` to the one before `to`. */
function seriesOf(plan: SummaryPlan): { start: number; points: number } {
  const start = floorTo(plan.from, plan.stepMs);
  return { start, points: Math.max(0, Math.ceil((plan.to - start) / plan.stepMs)) };
}

function rawLatency(count: number, percentiles: number[] | null, max: number | null): LatencyStats {
  if (!count || !percentiles) return EMPTY_LATENCY;
  const [p50, p90, p95, p99] = percentiles as [number, number, number, number];
  return { count, p50, p90, p95, p99, max };
}

function rawFigures(row: RawCellRow): CellFigures {
  return {
    runs: row.runs,
    failures: row.failures,
    abnormalCloses: row.abnormal_closes,
    reasons: new Map(),
    categories: new Map(),
    closeCodes: new Map(),
    handshake: rawLatency(row.handshake_count, row.handshake_percentiles, row.handshake_max_ms),
    roundTrip: rawLatency(row.round_trip_count, row.round_trip_percentiles, row.round_trip_max_ms),
  };
}

function lastResult(testId: string, row: LastResultRow): ResultResponse | null {
  if (row.resultId === null) return null;
  return resultResponse(row, {
    testId,
    runId: null,
    receivedAt: row.receivedAt!,
    location: row.locationName,
  });
}
