import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import type { MeasuredFields } from '../results/result.entity';
import { PARTITION_LOCK_CLASS, partitionDay } from '../results/results.repository';
import { isLatencySql, latencyBucketSql, PERCENTILES } from './latency-histogram';
import {
  DAY_MS,
  HOUR_MS,
  LEVEL_MS,
  MINUTE_MS,
  testWatermarks,
  type Fragment,
  type RollupLevel,
  type Watermarks,
} from './summary-plan';

/** Close codes counted as abnormal closes: 1006 (no close frame), 1011, 1012 and 1013. */
export const ABNORMAL_CLOSE_CODES = [1006, 1011, 1012, 1013] as const;

/** The advisory lock that lets one replica at a time roll up ('wsma', 0): its holder is the one. */
export const ROLLUP_LOCK = [0x77736d61, 0] as const;
/** Retention's DETACH waits this long at most for its lock on `results` (ingest waits behind it meanwhile). */
const DETACH_LOCK_TIMEOUT = '5s';

const TABLES: Readonly<Record<RollupLevel, string>> = {
  minute: 'rollups_minute',
  hour: 'rollups_hour',
  day: 'rollups_day',
};

/** Bounds of one rollup round: it is one transaction, so it stays short. */
export interface RoundLimits {
  /** Results taken from the queue (at least one queue row, whatever its size). */
  readonly results: number;
  /** Hours, then days, recomputed. */
  readonly buckets: number;
}

export interface RoundOutcome {
  /** Another replica was rolling up: nothing done. */
  readonly skipped: boolean;
  /** Results taken from the queue. */
  readonly results: number;
  /** Rollup rows written, by resolution. */
  readonly minutes: number;
  readonly hours: number;
  readonly days: number;
  /** Nothing was left to do as of this round: the watermarks moved to its `now`. */
  readonly complete: boolean;
}

/** What a summary needs to know before it reads: the test, its locations, how far rollups are done. */
export interface SummaryContext {
  readonly testExists: boolean;
  /** The locations the test runs from now. */
  readonly locationIds: string[];
  /** The id of the location named by the query's filter; null when there is no such location. */
  readonly filterLocationId: string | null;
  /** The rollups' watermarks, lowered to what of this test is not rolled up yet (testWatermarks). */
  readonly watermarks: Watermarks;
}

/** One rollup row as a summary reads it. */
export interface RollupRow {
  location_id: string;
  /** The bucket's start, epoch milliseconds. */
  at: number;
  runs: number;
  failures: number;
  failure_reasons: Record<string, number>;
  failure_categories: Record<string, number>;
  close_codes: Record<string, number>;
  abnormal_closes: number;
  /** The handshake histogram: its buckets and their counts as comma-separated integers, and its maximum. */
  handshake_buckets: string;
  handshake_counts: string;
  handshake_max_ms: number | null;
  round_trip_buckets: string;
  round_trip_counts: string;
  round_trip_max_ms: number | null;
}

/** One raw result as a summary reads it, its latencies' buckets computed by PostgreSQL. */
export interface RawUnitRow {
  location_id: string;
  /** The slot, epoch milliseconds. */
  at: number;
  success: boolean;
  reason: string | null;
  category: string | null;
  close_code: number | null;
  handshake_bucket: number | null;
  open_ms: number | null;
  round_trip_bucket: number | null;
  round_trip_ms: number | null;
}

/** A location's latest result in a window (null fields when it has none), with the location's name. */
export type LastResultRow = MeasuredFields & {
  locationId: string;
  locationName: string | null;
  agentId: string | null;
  receivedAt: Date | null;
};

/** Exact aggregates of raw results for one grouping: a location or all (null), a series bucket or all. */
export interface RawCellRow {
  location_id: string | null;
  at: Date | null;
  runs: number;
  failures: number;
  abnormal_closes: number;
  handshake_count: number;
  /** percentile_disc of 0.5, 0.9, 0.95, 0.99. */
  handshake_percentiles: number[] | null;
  handshake_max_ms: number | null;
  round_trip_count: number;
  round_trip_percentiles: number[] | null;
  round_trip_max_ms: number | null;
}

/** Exact counts by failure reason, category or close code, for one location or all (null). */
export interface RawCountRow {
  location_id: string | null;
  kind: 'reason' | 'category' | 'close_code';
  key: string;
  count: number;
}

const seconds = (ms: number) => `'${ms / 1000} seconds'`;
const bin = (ms: number, column: string) => `date_bin(${seconds(ms)}, ${column}, 'epoch')`;
const ABNORMAL = `(${ABNORMAL_CLOSE_CODES.join(', ')})`;
const KEY = 'test_id, bucket_start, location_id';

/**
 * The CTE `entries`: what a CTE `src` adds up to, as rows of one kind each (totals, counts by key,
 * histogram buckets) keyed by `keys` (columns of `src`). `src` holds raw results (their own columns) or
 * rollups (theirs). {@link MERGED_COLUMNS} then adds the entries up with one GROUP BY `keys`: joining
 * per-key aggregates instead makes the planner, which cannot estimate CTEs, nest loops over them.
 */
function entriesCte(input: 'results' | 'rollups', keys: readonly string[]): string {
  const fromResults = input === 'results';
  const key = keys.map((k) => `src.${k}`).join(', ');
  const groupBy = [...keys.map((_, i) => i + 1), keys.length + 2, keys.length + 3].join(', ');
  const entry = (kind: string, k: string, b: string, n: string, from: string) =>
    `SELECT ${key}, '${kind}' AS kind, ${k} AS k, ${b}::smallint AS b,
            ${n}::int AS n, NULL::int AS runs, NULL::int AS failures, NULL::int AS abnormal_closes,
            NULL::float8 AS handshake_max_ms, NULL::float8 AS round_trip_max_ms
       ${from} GROUP BY ${groupBy}`;
  const counts = (kind: string, expression: string, where: string, column: string) =>
    fromResults
      ? entry(kind, expression, 'NULL', 'count(*)', `FROM src WHERE ${where}`)
      : entry(
          kind,
          'e.key',
          'NULL',
          'sum(e.value::int)',
          `FROM src CROSS JOIN LATERAL jsonb_each_text(src.${column}) e`,
        );
  const histogram = (kind: string, column: string, prefix: string) =>
    fromResults
      ? entry(
          kind,
          'NULL::text',
          latencyBucketSql(column),
          'count(*)',
          `FROM src WHERE ${isLatencySql(column)}`,
        )
      : entry(
          kind,
          'NULL::text',
          'h.bucket',
          'sum(h.n)',
          `FROM src CROSS JOIN LATERAL unnest(src.${prefix}_buckets, src.${prefix}_counts) AS h(bucket, n)`,
        );
  const totals = fromResults
    ? `SELECT ${key}, 'total' AS kind, NULL::text AS k, NULL::smallint AS b,
              NULL::int AS n, 1 AS runs, (NOT success)::int AS failures,
              (close_code IN ${ABNORMAL})::int AS abnormal_closes,
              CASE WHEN ${isLatencySql('open_ms')} THEN open_ms END AS handshake_max_ms,
              CASE WHEN ${isLatencySql('round_trip_ms')} THEN round_trip_ms END AS round_trip_max_ms
         FROM src`
    : `SELECT ${key}, 'total' AS kind, NULL::text AS k, NULL::smallint AS b,
              NULL::int AS n, runs, failures, abnormal_closes, handshake_max_ms, round_trip_max_ms
         FROM src`;
  return `
  entries AS (
    ${totals}
    UNION ALL ${counts('reason', `coalesce(reason, 'unknown')`, 'NOT success', 'failure_reasons')}
    UNION ALL ${counts('category', `coalesce(category, 'unknown')`, 'NOT success', 'failure_categories')}
    UNION ALL ${counts('code', 'close_code::text', 'close_code IS NOT NULL', 'close_codes')}
    UNION ALL ${histogram('handshake', 'open_ms', 'handshake')}
    UNION ALL ${histogram('round_trip', 'round_trip_ms', 'round_trip')}
  )`;
}

const map = (kind: string) => `coalesce(jsonb_object_agg(k, n) FILTER (WHERE kind = '${kind}'), '{}')`;
const buckets = (kind: string) =>
  `coalesce(array_agg(b ORDER BY b) FILTER (WHERE kind = '${kind}'), '{}') AS ${kind}_buckets,
   coalesce(array_agg(n ORDER BY b) FILTER (WHERE kind = '${kind}'), '{}') AS ${kind}_counts`;

/** The columns of a rollup row, after its keys, as aggregates of `entries`. */
const MERGED_COLUMNS = `sum(runs)::int AS runs, sum(failures)::int AS failures,
  ${map('reason')} AS failure_reasons, ${map('category')} AS failure_categories, ${map('code')} AS close_codes,
  coalesce(sum(abnormal_closes), 0)::int AS abnormal_closes, ${buckets('handshake')}, max(handshake_max_ms) AS handshake_max_ms,
  ${buckets('round_trip')}, max(round_trip_max_ms) AS round_trip_max_ms`;

/**
 * The statements that recompute rollup rows from a CTE `src` holding the input of each target bucket,
 * keyed by (test_id, bucket_start, location_id) of the target. The target rows are replaced, never
 * incremented: recomputing twice changes nothing. Defines the CTE `rolled`, the keys written.
 */
function mergeCtes(input: 'results' | 'rollups', target: string): string {
  return `${entriesCte(input, ['test_id', 'bucket_start', 'location_id'])},
  rolled AS (
    INSERT INTO ${target} (test_id, bucket_start, location_id, runs, failures, failure_reasons,
                           failure_categories, close_codes, abnormal_closes, handshake_buckets, handshake_counts,
                           handshake_max_ms, round_trip_buckets, round_trip_counts, round_trip_max_ms)
    SELECT ${KEY}, ${MERGED_COLUMNS} FROM entries GROUP BY 1, 2, 3
    ON CONFLICT (test_id, bucket_start, location_id) DO UPDATE SET
      runs = excluded.runs, failures = excluded.failures, failure_reasons = excluded.failure_reasons,
      failure_categories = excluded.failure_categories, close_codes = excluded.close_codes,
      abnormal_closes = excluded.abnormal_closes, handshake_buckets = excluded.handshake_buckets,
      handshake_counts = excluded.handshake_counts, handshake_max_ms = excluded.handshake_max_ms,
      round_trip_buckets = excluded.round_trip_buckets, round_trip_counts = excluded.round_trip_counts,
      round_trip_max_ms = excluded.round_trip_max_ms
    RETURNING ${KEY}
  )`;
}

/**
 * Minutes from the queue: takes queue rows in order until they hold $1 results (at least one row), and recomputes
 * every minute of a test and location they name from all its results; the hours of those minutes become
 * pending. `remaining` counts the queue rows this statement saw and did not take.
 */
const ROLL_UP_MINUTES = `
  WITH candidates AS (
    SELECT id, result_count, sum(result_count) OVER (ORDER BY id) AS running
      FROM (SELECT id, result_count FROM rollup_queue ORDER BY id LIMIT $1) q
  ),
  claimed AS (
    DELETE FROM rollup_queue q USING candidates c
     WHERE q.id = c.id AND c.running - c.result_count < $1
    RETURNING q.location_id, q.test_ids, q.slot_times, q.result_count
  ),
  keys AS (
    SELECT DISTINCT k.test_id, ${bin(MINUTE_MS, 'k.slot_time')} AS bucket_start, c.location_id
      FROM claimed c CROSS JOIN LATERAL unnest(c.test_ids, c.slot_times) AS k(test_id, slot_time)
  ),
  -- One index range scan per key, in the one partition of its day (pruned at run time): OFFSET 0 keeps
  -- the planner from flattening it into a join on (test, location) alone, quadratic in a test's results.
  src AS (
    SELECT k.test_id, k.bucket_start, k.location_id, r.success, r.reason, r.category, r.close_code, r.open_ms,
           r.round_trip_ms
      FROM keys k
     CROSS JOIN LATERAL (
       SELECT success, reason, category, close_code, open_ms, round_trip_ms FROM results
        WHERE test_id = k.test_id AND location_id = k.location_id
          AND slot_time >= k.bucket_start AND slot_time < k.bucket_start + interval ${seconds(MINUTE_MS)}
       OFFSET 0
     ) r
  ),
  ${mergeCtes('results', TABLES.minute)},
  pending AS (
    INSERT INTO rollup_pending (resolution, bucket_start, test_id, location_id)
    SELECT DISTINCT 'hour', ${bin(HOUR_MS, 'bucket_start')}, test_id, location_id FROM rolled
    ON CONFLICT DO NOTHING
  )
  SELECT coalesce((SELECT sum(result_count) FROM claimed), 0)::int AS results,
         (SELECT count(*) FROM rolled)::int AS rolled,
         ((SELECT count(*) FROM rollup_queue) - (SELECT count(*) FROM claimed))::int AS remaining`;

/**
 * Hours (days) from minutes (hours): takes pending buckets that ended before $1, $2 at most, oldest first,
 * and recomputes each from the finer rollups; for hours, their days become pending.
 */
function rollUpPending(level: 'hour' | 'day'): string {
  const finer = level === 'hour' ? TABLES.minute : TABLES.hour;
  return `
  WITH due AS (
    SELECT resolution, bucket_start, test_id, location_id FROM rollup_pending
     WHERE resolution = '${level}' AND bucket_start < $1
     ORDER BY bucket_start LIMIT $2
  ),
  claimed AS (
    DELETE FROM rollup_pending p USING due d
     WHERE p.resolution = d.resolution AND p.bucket_start = d.bucket_start AND p.test_id = d.test_id
       AND p.location_id = d.location_id
    RETURNING p.test_id, p.bucket_start, p.location_id
  ),
  src AS (
    SELECT c.test_id, c.bucket_start, c.location_id, f.runs, f.failures, f.failure_reasons, f.failure_categories,
           f.close_codes, f.abnormal_closes, f.handshake_buckets, f.handshake_counts, f.handshake_max_ms,
           f.round_trip_buckets, f.round_trip_counts, f.round_trip_max_ms
      FROM claimed c
     CROSS JOIN LATERAL (
       SELECT * FROM ${finer}
        WHERE test_id = c.test_id AND location_id = c.location_id
          AND bucket_start >= c.bucket_start AND bucket_start < c.bucket_start + interval ${seconds(LEVEL_MS[level])}
       OFFSET 0
     ) f
  ),
  ${mergeCtes('rollups', TABLES[level])}${
    level === 'hour'
      ? `,
  pending AS (
    INSERT INTO rollup_pending (resolution, bucket_start, test_id, location_id)
    SELECT DISTINCT 'day', ${bin(DAY_MS, 'bucket_start')}, test_id, location_id FROM rolled
    ON CONFLICT DO NOTHING
  )`
      : ''
  }
  SELECT (SELECT count(*) FROM rolled)::int AS rolled,
         ((SELECT count(*) FROM rollup_pending WHERE resolution = '${level}' AND bucket_start < $1)
           - (SELECT count(*) FROM claimed))::int AS remaining`;
}

const ROLL_UP_HOURS = rollUpPending('hour');
const ROLL_UP_DAYS = rollUpPending('day');

/**
 * A rollup row as one line of text, its fields separated by tabs: id, start (epoch ms), runs, failures,
 * abnormal closes, the three JSON objects of counts, then each histogram as comma-separated buckets and
 * counts with its maximum ('' for none). No field can hold a tab or a newline (JSON escapes them).
 */
const ROLLUP_LINE = `concat_ws(E'\\t', location_id, (extract(epoch FROM bucket_start) * 1000)::bigint, runs, failures,
  abnormal_closes, failure_reasons, failure_categories, close_codes, array_to_string(handshake_buckets, ','),
  array_to_string(handshake_counts, ','), coalesce(handshake_max_ms::text, ''),
  array_to_string(round_trip_buckets, ','), array_to_string(round_trip_counts, ','),
  coalesce(round_trip_max_ms::text, ''))`;

const counts = (field: string): Record<string, number> =>
  field === '{}' ? {} : (JSON.parse(field) as Record<string, number>);
const maybeNumber = (field: string): number | null => (field ? Number(field) : null);

function parseRollupLine(line: string): RollupRow {
  const f = line.split('\t');
  return {
    location_id: f[0]!,
    at: Number(f[1]),
    runs: Number(f[2]),
    failures: Number(f[3]),
    abnormal_closes: Number(f[4]),
    failure_reasons: counts(f[5]!),
    failure_categories: counts(f[6]!),
    close_codes: counts(f[7]!),
    handshake_buckets: f[8]!,
    handshake_counts: f[9]!,
    handshake_max_ms: maybeNumber(f[10]!),
    round_trip_buckets: f[11]!,
    round_trip_counts: f[12]!,
    round_trip_max_ms: maybeNumber(f[13]!),
  };
}

/** Reads and writes of the rollups, and retention of results and rollups. Only SQL here. */
@Injectable()
export class AggregationRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  // ---------- rolling up ----------

  /**
   * One round, in one transaction under an advisory lock (a replica that finds it taken skips the round):
   * minutes from the queue, then the pending hours that ended before `closedBefore.hour`, then the pending
   * days that ended before `closedBefore.day`. Each resolution's watermark moves to `through` only when the
   * round left nothing of it (and of the finer ones) undone; watermarks never move back.
   */
  rollUpRound(through: Watermarks, limits: RoundLimits): Promise<RoundOutcome> {
    return this.dataSource.transaction(async (manager) => {
      const [lock] = await manager.query<{ locked: boolean }[]>(
        'SELECT pg_try_advisory_xact_lock($1, $2) AS locked',
        [...ROLLUP_LOCK],
      );
      if (!lock!.locked) return { skipped: true, results: 0, minutes: 0, hours: 0, days: 0, complete: false };
      const [minutes] = await manager.query<{ results: number; rolled: number; remaining: number }[]>(
        ROLL_UP_MINUTES,
        [limits.results],
      );
      const [hours] = await manager.query<{ rolled: number; remaining: number }[]>(ROLL_UP_HOURS, [
        new Date(through.hour),
        limits.buckets,
      ]);
      const [days] = await manager.query<{ rolled: number; remaining: number }[]>(ROLL_UP_DAYS, [
        new Date(through.day),
        limits.buckets,
      ]);
      const minutesDone = minutes!.remaining === 0;
      const hoursDone = minutesDone && hours!.remaining === 0;
      const daysDone = hoursDone && days!.remaining === 0;
      await manager.query(
        `UPDATE rollup_state
            SET minutes_through = CASE WHEN $1 THEN greatest(minutes_through, $4) ELSE minutes_through END,
                hours_through = CASE WHEN $2 THEN greatest(hours_through, $5) ELSE hours_through END,
                days_through = CASE WHEN $3 THEN greatest(days_through, $6) ELSE days_through END,
                updated_at = now()
          WHERE id = 1`,
        [
          minutesDone,
          hoursDone,
          daysDone,
          new Date(through.minute),
          new Date(through.hour),
          new Date(through.day),
        ],
      );
      return {
        skipped: false,
        results: minutes!.results,
        minutes: minutes!.rolled,
        hours: hours!.rolled,
        days: days!.rolled,
        complete: daysDone,
      };
    });
  }

  /**
   * Queues the results already stored with slots in [from, to) for rolling up, one queue row per location
   * and hour: after a bulk load that bypassed ingest, or to rebuild rollups. Returns the results queued.
   */
  async enqueueStored(from: Date, to: Date): Promise<number> {
    const [row] = await this.dataSource.query<{ queued: number }[]>(
      `WITH queued AS (
         INSERT INTO rollup_queue (location_id, test_ids, slot_times, result_count)
         SELECT location_id, array_agg(test_id), array_agg(slot_time), count(*)
           FROM results WHERE slot_time >= $1 AND slot_time < $2
          GROUP BY location_id, ${bin(HOUR_MS, 'slot_time')}
          ORDER BY min(slot_time)
         RETURNING result_count
       )
       SELECT coalesce(sum(result_count), 0)::int AS queued FROM queued`,
      [from, to],
    );
    return row!.queued;
  }

  // ---------- reading ----------

  async summaryContext(testId: string, locationName: string | undefined): Promise<SummaryContext> {
    const [row] = await this.dataSource.query<
      {
        test_exists: boolean;
        location_ids: string[];
        location_id: string | null;
        minutes_through: Date;
        hours_through: Date;
        days_through: Date;
        queued_from: Date | null;
        pending_hour_from: Date | null;
        pending_day_from: Date | null;
      }[]
    >(
      // What of the test is not rolled up yet (testWatermarks): the queue is short between rounds, and
      // only the rows naming the test are unnested.
      `SELECT EXISTS (SELECT FROM tests WHERE id = $1) AS test_exists,
              ARRAY(SELECT location_id FROM test_locations WHERE test_id = $1) AS location_ids,
              (SELECT id FROM locations WHERE name = $2) AS location_id,
              s.minutes_through, s.hours_through, s.days_through,
              (SELECT min(u.slot_time)
                 FROM rollup_queue q CROSS JOIN LATERAL unnest(q.test_ids, q.slot_times) AS u(test_id, slot_time)
                WHERE $1::uuid = ANY (q.test_ids) AND u.test_id = $1) AS queued_from,
              (SELECT min(bucket_start) FROM rollup_pending
                WHERE resolution = 'hour' AND test_id = $1) AS pending_hour_from,
              (SELECT min(bucket_start) FROM rollup_pending
                WHERE resolution = 'day' AND test_id = $1) AS pending_day_from
         FROM rollup_state s WHERE s.id = 1`,
      [testId, locationName ?? null],
    );
    const ms = (t: Date | null) => t?.getTime();
    return {
      testExists: row!.test_exists,
      locationIds: row!.location_ids,
      filterLocationId: row!.location_id,
      watermarks: testWatermarks(
        {
          minute: row!.minutes_through.getTime(),
          hour: row!.hours_through.getTime(),
          day: row!.days_through.getTime(),
        },
        {
          queuedFrom: ms(row!.queued_from),
          pendingHourFrom: ms(row!.pending_hour_from),
          pendingDayFrom: ms(row!.pending_day_from),
        },
      ),
    };
  }

  /**
   * The rollup rows of a test (of one location, or all) in the fragments read from rollups, and how many
   * of each resolution. They come as one text of lines, which node-pg hands over as it is: decoding a row
   * of arrays and JSON columns costs it several times what PostgreSQL spends finding the row. (Adding the
   * rows up per series bucket in PostgreSQL instead, unnesting their histograms, costs more still.)
   */
  async readRollups(
    testId: string,
    fragments: readonly Fragment[],
    locationId?: string,
  ): Promise<{ rows: RollupRow[]; read: Record<RollupLevel, number> }> {
    const parts: string[] = [];
    const params: unknown[] = [testId, locationId ?? null];
    for (const fragment of fragments) {
      if (fragment.source === 'raw') continue;
      params.push(new Date(fragment.from), new Date(fragment.to));
      parts.push(
        `SELECT '${fragment.source}' AS level, ${ROLLUP_LINE} AS line FROM ${TABLES[fragment.source]}
          WHERE test_id = $1 AND bucket_start >= $${params.length - 1} AND bucket_start < $${params.length}
            AND ($2::uuid IS NULL OR location_id = $2::uuid)`,
      );
    }
    const read: Record<RollupLevel, number> = { day: 0, hour: 0, minute: 0 };
    if (!parts.length) return { rows: [], read };
    const [row] = await this.dataSource.query<{ lines: string | null; levels: string | null }[]>(
      `SELECT string_agg(line, E'\\n') AS lines, string_agg(left(level, 1), '') AS levels
         FROM (${parts.join('\nUNION ALL\n')}) u`,
      params,
    );
    for (const level of row!.levels ?? '') read[level === 'd' ? 'day' : level === 'h' ? 'hour' : 'minute']++;
    return { rows: row!.lines ? row!.lines.split('\n').map(parseRollupLine) : [], read };
  }

  /** The raw results of a test in the fragments read from results, their latencies' buckets computed. */
  async readRawUnits(
    testId: string,
    fragments: readonly Fragment[],
    locationId?: string,
  ): Promise<RawUnitRow[]> {
    const parts: string[] = [];
    const params: unknown[] = [testId, locationId ?? null];
    for (const fragment of fragments) {
      if (fragment.source !== 'raw') continue;
      params.push(new Date(fragment.from), new Date(fragment.to));
      parts.push(
        `SELECT location_id, extract(epoch FROM slot_time)::float8 * 1000 AS at, success, reason, category,
                close_code, ${latencyBucketSql('open_ms')} AS handshake_bucket, open_ms,
                ${latencyBucketSql('round_trip_ms')} AS round_trip_bucket, round_trip_ms
           FROM results
          WHERE test_id = $1 AND slot_time >= $${params.length - 1} AND slot_time < $${params.length}
            AND ($2::uuid IS NULL OR location_id = $2::uuid)`,
      );
    }
    if (!parts.length) return [];
    // One JSON array: quicker for node-pg than rows.
    const [row] = await this.dataSource.query<{ rows: RawUnitRow[] }[]>(
      `SELECT coalesce(json_agg(u), '[]') AS rows FROM (${parts.join('\nUNION ALL\n')}) u`,
      params,
    );
    return row!.rows;
  }

  /**
   * Each location's latest result of the test with a slot in [from, to), and the location's name. Looked
   * for in the last day of the window first: planning a look through a month of day partitions costs
   * more than finding the result.
   */
  async lastResults(
    testId: string,
    locationIds: readonly string[],
    from: Date,
    to: Date,
  ): Promise<LastResultRow[]> {
    if (!locationIds.length) return [];
    const recent = new Date(Math.max(from.getTime(), to.getTime() - DAY_MS));
    const rows = await this.lastResultsIn(testId, locationIds, recent, to);
    const missing = rows.filter((row) => row.resultId === null).map((row) => row.locationId);
    if (!missing.length || recent <= from) return rows;
    const older = new Map(
      (await this.lastResultsIn(testId, missing, from, recent)).map((row) => [row.locationId, row]),
    );
    return rows.map((row) => older.get(row.locationId) ?? row);
  }

  private lastResultsIn(
    testId: string,
    locationIds: readonly string[],
    from: Date,
    to: Date,
  ): Promise<LastResultRow[]> {
    return this.dataSource.query<LastResultRow[]>(
      `SELECT l.id AS "locationId", loc.name AS "locationName", r.result_id AS "resultId",
              r.agent_id AS "agentId", r.test_revision AS "testRevision", r.slot_time AS "slotTime",
              r.started_at AS "startedAt", r.received_at AS "receivedAt", r.attempts, r.success, r.value,
              r.reason, r.cause, r.category, r.open_ms AS "openMs", r.round_trip_ms AS "roundTripMs",
              r.total_ms AS "totalMs", r.close_code AS "closeCode", r.tls_not_after AS "tlsNotAfter", r.result
         FROM unnest($2::uuid[]) AS l(id)
         LEFT JOIN locations loc ON loc.id = l.id
         LEFT JOIN LATERAL (
           SELECT * FROM results
            WHERE test_id = $1 AND location_id = l.id AND slot_time >= $3 AND slot_time < $4
            ORDER BY slot_time DESC LIMIT 1
         ) r ON true`,
      [testId, locationIds, from, to],
    );
  }

  /**
   * The exact aggregates of the raw results of a test in [from, to): per location and series bucket, per
   * location, per series bucket and in all (GROUPING SETS), and the counts by reason, category and close
   * code per location and in all. Slow on long windows: the reference the rollups are tested and
   * benchmarked against.
   */
  async rawAggregates(
    testId: string,
    from: Date,
    to: Date,
    stepMs: number,
    locationId?: string,
  ): Promise<{ cells: RawCellRow[]; counts: RawCountRow[] }> {
    const raw = `
      WITH r AS (
        SELECT location_id, date_bin(make_interval(secs => $5), slot_time, 'epoch') AS at, success, reason,
               category, close_code, open_ms, round_trip_ms
          FROM results
         WHERE test_id = $1 AND slot_time >= $2 AND slot_time < $3
           AND ($4::uuid IS NULL OR location_id = $4::uuid)
      )`;
    const params = [testId, from, to, locationId ?? null, stepMs / 1000];
    const latency = (column: string, name: string) => {
      const counted = isLatencySql(column);
      return `count(*) FILTER (WHERE ${counted})::int AS ${name}_count,
              percentile_disc(ARRAY[${PERCENTILES.join(', ')}]::float8[]) WITHIN GROUP (ORDER BY ${column})
                FILTER (WHERE ${counted}) AS ${name}_percentiles,
              max(${column}) FILTER (WHERE ${counted}) AS ${name}_max_ms`;
    };
    const [cells, counts] = await Promise.all([
      this.dataSource.query<RawCellRow[]>(
        `${raw}
         SELECT CASE WHEN GROUPING(location_id) = 0 THEN location_id END AS location_id,
                CASE WHEN GROUPING(at) = 0 THEN at END AS at,
                count(*)::int AS runs, count(*) FILTER (WHERE NOT success)::int AS failures,
                count(*) FILTER (WHERE close_code IN ${ABNORMAL})::int AS abnormal_closes,
                ${latency('open_ms', 'handshake')},
                ${latency('round_trip_ms', 'round_trip')}
           FROM r GROUP BY GROUPING SETS ((location_id, at), (location_id), (at), ())`,
        params,
      ),
      this.dataSource.query<RawCountRow[]>(
        `${raw}
         SELECT CASE WHEN GROUPING(location_id) = 0 THEN location_id END AS location_id, kind, key,
                count(*)::int AS count
           FROM (SELECT location_id, 'reason' AS kind, coalesce(reason, 'unknown') AS key FROM r WHERE NOT success
                 UNION ALL
                 SELECT location_id, 'category', coalesce(category, 'unknown') FROM r WHERE NOT success
                 UNION ALL
                 SELECT location_id, 'close_code', close_code::text FROM r WHERE close_code IS NOT NULL) e
          GROUP BY GROUPING SETS ((location_id, kind, key), (kind, key))`,
        params,
      ),
    ]);
    return { cells, counts };
  }

  // ---------- retention ----------

  /**
   * Detaches and drops every day partition of `results` that ends at or before `before`, each in its own
   * short transaction under the lock its creation takes. Returns the names dropped.
   */
  async dropPartitionsBefore(before: number): Promise<string[]> {
    const partitions = await this.dataSource.query<{ name: string }[]>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'results'::regclass ORDER BY 1`,
    );
    const dropped: string[] = [];
    for (const { name } of partitions) {
      const day = partitionDay(name);
      if (day === undefined || (day + 1) * DAY_MS > before) continue;
      await this.dataSource.transaction(async (manager: EntityManager) => {
        await manager.query(`SET LOCAL lock_timeout = '${DETACH_LOCK_TIMEOUT}'`);
        await manager.query('SELECT pg_advisory_xact_lock($1, $2)', [PARTITION_LOCK_CLASS, day]);
        await manager.query(`ALTER TABLE results DETACH PARTITION ${name}`);
        await manager.query(`DROP TABLE ${name}`);
      });
      dropped.push(name);
    }
    return dropped;
  }

  /** Deletes up to `limit` rollup rows of a resolution whose bucket starts before `before`; the count. */
  async deleteRollupsBefore(level: RollupLevel, before: number, limit: number): Promise<number> {
    const [row] = await this.dataSource.query<{ deleted: number }[]>(
      `WITH deleted AS (
         DELETE FROM ${TABLES[level]} WHERE ctid IN (
           SELECT ctid FROM ${TABLES[level]} WHERE bucket_start < $1 LIMIT $2)
         RETURNING 1
       )
       SELECT count(*)::int AS deleted FROM deleted`,
      [new Date(before), limit],
    );
    return row!.deleted;
  }
}
