import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import type { AgentResult } from '@wsmon/proto';
import { In, type DataSource, type EntityManager, type Repository } from 'typeorm';
import type { Cursor } from '../common/pagination';
import { isDuplicateObject } from '../common/pg-errors';
import { isUuid } from '../common/validation';
import { LocationEntity } from '../locations/location.entity';
import { TestEntity } from '../tests/test.entity';
import {
  boolArray,
  float8Array,
  int4Array,
  int8Array,
  jsonArray,
  textArray,
  timestamptzArray,
  uuidArray,
} from './binary-arrays';
import { ResultEntity } from './result.entity';
import { RunEntity, RunResultEntity, type RunLocationStatus } from './run.entity';

/** What one ingest call did with its results: each is counted once. */
export interface IngestOutcome {
  /** Stored: a new row of `results`, or a run's location completed. */
  readonly inserted: number;
  /** Already there: the same slot (or run and location) had a result. */
  readonly duplicates: number;
  /** Dropped on purpose: the test (or run) no longer exists, or the slot lies outside what is kept. */
  readonly discarded: number;
}

/** The fields of an agent's result that are stored; `run_id` set for an on-demand run. */
export type StoredResult = Pick<
  AgentResult,
  | 'result_id'
  | 'test_id'
  | 'test_revision'
  | 'slot_time'
  | 'started_time'
  | 'attempts'
  | 'run_id'
  | 'success'
  | 'value'
  | 'reason'
  | 'cause'
  | 'category'
  | 'open_ms'
  | 'round_trip_ms'
  | 'total_ms'
  | 'close_code'
  | 'tls_not_after'
  | 'result_json'
>;

export interface ResultFilter {
  /** Inclusive. */
  readonly from: Date;
  /** Exclusive. */
  readonly to: Date;
  readonly locationName?: string;
  readonly agentId?: string;
  readonly success?: boolean;
}

export interface RunWithLocations {
  readonly run: RunEntity;
  /** One row per location of the run, by location id. */
  readonly locations: RunResultEntity[];
}

export interface NewRun {
  readonly id: string;
  readonly testId: string;
  readonly requestedBy: string | null;
}

const DAY_MS = 86_400_000;
/**
 * The first key of the advisory locks that serialise partition creation across replicas (the second is
 * the day); retention takes the same to drop one.
 */
export const PARTITION_LOCK_CLASS = 0x77736d72; // 'wsmr'
/**
 * ATTACH PARTITION waits for its SHARE UPDATE EXCLUSIVE lock on `results` behind DDL, VACUUM or an index
 * build: bounded, the ingest fails instead (the agent sends the batch again).
 */
const PARTITION_LOCK_TIMEOUT = '10s';

/** `results_p20260315`: the partition of one UTC day (days since the epoch). */
export function partitionName(day: number): string {
  return `results_p${new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** The day of a partition named by {@link partitionName}; undefined for any other name. */
export function partitionDay(name: string): number | undefined {
  const match = /^results_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  return match ? dayOf(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]))) : undefined;
}

export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS);

@Injectable()
export class ResultsRepository {
  /** Days whose partition is known to exist: checked once per process, then free. */
  private readonly partitions = new Set<number>();
  private readonly creating = new Map<number, Promise<void>>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(ResultEntity) private readonly results: Repository<ResultEntity>,
    @InjectRepository(RunResultEntity) private readonly runResults: Repository<RunResultEntity>,
    @InjectRepository(TestEntity) private readonly tests: Repository<TestEntity>,
    @InjectRepository(LocationEntity) private readonly locations: Repository<LocationEntity>,
  ) {}

  // ---------- partitions ----------

  /**
   * Makes sure the partitions of these UTC days (days since the epoch) exist. Each is created in its own
   * short transaction, as a plain table attached to `results` afterwards: ATTACH PARTITION takes only a
   * SHARE UPDATE EXCLUSIVE lock on the parent, so ingest goes on meanwhile (CREATE TABLE … PARTITION OF
   * would block it). Replicas creating the same day serialise on an advisory lock and re-check.
   */
  async ensurePartitions(days: Iterable<number>): Promise<void> {
    const missing = [...new Set(days)].filter((day) => !this.partitions.has(day)).sort((a, b) => a - b);
    for (const day of missing) {
      let creating = this.creating.get(day);
      if (!creating) {
        creating = this.createPartition(day).finally(() => this.creating.delete(day));
        this.creating.set(day, creating);
      }
      await creating;
    }
  }

  private async createPartition(day: number): Promise<void> {
    const name = partitionName(day);
    const from = new Date(day * DAY_MS).toISOString();
    const to = new Date((day + 1) * DAY_MS).toISOString();
    try {
      await this.dataSource.transaction(async (manager) => {
        await manager.query(`SET LOCAL lock_timeout = '${PARTITION_LOCK_TIMEOUT}'`);
        await manager.query('SELECT pg_advisory_xact_lock($1, $2)', [PARTITION_LOCK_CLASS, day]);
        if (await partitionExists(manager, name)) return;
        await manager.query(`CREATE TABLE ${name} (LIKE results INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
        await manager.query(
          `ALTER TABLE results ATTACH PARTITION ${name} FOR VALUES FROM ('${from}') TO ('${to}')`,
        );
      });
    } catch (error) {
      // Someone outside the lock protocol (an operator, an older replica) made it first: it is there.
      if (!isDuplicateObject(error) || !(await partitionExists(this.dataSource.manager, name))) throw error;
    }
    this.partitions.add(day);
  }

  // ---------- ingest ----------

  /**
   * Stores an agent's results in one transaction, resolving once it committed. Scheduled results go to
   * `results` (a slot already there is a duplicate, a deleted test's result is discarded), and those stored
   * are named in one row of `rollup_queue` for the rollups (aggregation/); on-demand ones
   * (`run_id` set) complete their run's row of this location, once. The partitions of the scheduled
   * results' days must exist ({@link ensurePartitions}).
   *
   * Fast by construction: one statement per kind, whatever the number of results, with every column as
   * one binary array parameter; `result_json` goes to PostgreSQL as the bytes that arrived (no decoding,
   * escaping or parsing here: PostgreSQL validates the JSON).
   */
  async ingest(
    locationId: string,
    agentId: string,
    scheduled: readonly StoredResult[],
    onDemand: readonly StoredResult[],
  ): Promise<IngestOutcome> {
    if (!scheduled.length && !onDemand.length) return { inserted: 0, duplicates: 0, discarded: 0 };
    const counts = await this.dataSource.transaction(async (manager) => {
      const total = { inserted: 0, discarded: 0 };
      for (const [rows, sql] of [
        [scheduled, INSERT_RESULTS],
        [onDemand, COMPLETE_RUN_RESULTS],
      ] as const) {
        if (!rows.length) continue;
        const [row] = await manager.query<{ inserted: number; discarded: number }[]>(sql, [
          locationId,
          agentId,
          ...columns(rows),
        ]);
        total.inserted += row!.inserted;
        total.discarded += row!.discarded;
      }
      return total;
    });
    const all = scheduled.length + onDemand.length;
    return { ...counts, duplicates: all - counts.inserted - counts.discarded };
  }

  // ---------- reading results ----------

  /** A test's results in the range, newest first (then by location id), after the cursor. */
  listResults(
    testId: string,
    filter: ResultFilter,
    limit: number,
    after: Cursor | undefined,
  ): Promise<ResultEntity[]> {
    if (!isUuid(testId)) return Promise.resolve([]);
    const query = this.results
      .createQueryBuilder('r')
      .where('r.test_id = :testId', { testId })
      .andWhere('r.slot_time >= :from AND r.slot_time < :to', { from: filter.from, to: filter.to })
      .orderBy('r.slot_time', 'DESC')
      .addOrderBy('r.location_id', 'DESC')
      .limit(limit);
    // The cursor is (slot_time, location_id) of the last row shown: unique within a test.
    if (after) {
      query.andWhere('(r.slot_time, r.location_id) < (:slotTime, :locationId)', {
        slotTime: after.createdAt,
        locationId: after.id,
      });
    }
    if (filter.locationName !== undefined) {
      query.andWhere('r.location_id = (SELECT l.id FROM locations l WHERE l.name = :location)', {
        location: filter.locationName,
      });
    }
    if (filter.agentId !== undefined) query.andWhere('r.agent_id = :agentId', { agentId: filter.agentId });
    if (filter.success !== undefined) query.andWhere('r.success = :success', { success: filter.success });
    return query.getMany();
  }

  testExists(testId: string): Promise<boolean> {
    return isUuid(testId) ? this.tests.existsBy({ id: testId }) : Promise.resolve(false);
  }

  /** Names of these locations by id; a deleted location is missing. */
  async locationNames(ids: readonly string[]): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const found = await this.locations.findBy({ id: In([...ids]) });
    return new Map(found.map((l) => [l.id, l.name]));
  }

  // ---------- on-demand runs ----------

  /**
   * Creates a run of the test at its current revision with one pending row per location of the test, in
   * one transaction. Null when the test does not exist (any more).
   */
  async createRun(run: NewRun): Promise<RunWithLocations | null> {
    return this.dataSource.transaction(async (manager) => {
      const created = await manager.query<{ id: string }[]>(
        `INSERT INTO runs (id, test_id, test_revision, requested_by)
         SELECT $1, t.id, t.revision, $3 FROM tests t WHERE t.id = $2
         RETURNING id`,
        [run.id, run.testId, run.requestedBy],
      );
      if (!created.length) return null;
      await manager.query(
        `INSERT INTO run_results (run_id, location_id)
         SELECT $1, tl.location_id FROM test_locations tl WHERE tl.test_id = $2`,
        [run.id, run.testId],
      );
      return loadRun(manager, run.id);
    });
  }

  /** The run with its test id and its rows, one per location; null when there is no such run. */
  findRun(runId: string): Promise<RunWithLocations | null> {
    return isUuid(runId) ? loadRun(this.dataSource.manager, runId) : Promise.resolve(null);
  }

  /**
   * Records that a run's location was dispatched to an agent, or that it has none that can run it. Only a
   * pending row changes (a result may have completed it first); true when it did.
   */
  async markRunLocation(
    runId: string,
    locationId: string,
    status: Extract<RunLocationStatus, 'dispatched' | 'no_agent'>,
    agentId?: string,
  ): Promise<boolean> {
    const result = await this.runResults
      .createQueryBuilder()
      .update()
      .set({ status, agentId: agentId ?? null })
      .where('run_id = :runId AND location_id = :locationId AND status = :pending', {
        runId,
        locationId,
        pending: 'pending' satisfies RunLocationStatus,
      })
      .execute();
    return (result.affected ?? 0) > 0;
  }
}

async function partitionExists(manager: EntityManager, name: string): Promise<boolean> {
  const [row] = await manager.query<{ found: boolean }[]>(
    `SELECT to_regclass(format('public.%I', $1::text)) IS NOT NULL AS found`,
    [name],
  );
  return row!.found;
}

async function loadRun(manager: EntityManager, runId: string): Promise<RunWithLocations | null> {
  const run = await manager.findOneBy(RunEntity, { id: runId });
  if (!run) return null;
  const locations = await manager.find(RunResultEntity, { where: { runId }, order: { locationId: 'ASC' } });
  return { run, locations };
}

// ---------- the ingest statements ----------

/** $1 location, $2 agent, then one array per column (see {@link columns}): every result is one element of each. */
const BATCH = `unnest($3::uuid[], $4::uuid[], $5::int8[], $6::timestamptz[], $7::timestamptz[], $8::int4[],
    $9::bool[], $10::float8[], $11::text[], $12::text[], $13::text[], $14::float8[], $15::float8[], $16::float8[],
    $17::int4[], $18::timestamptz[], $19::json[], $20::uuid[])
  AS r(result_id, test_id, test_revision, slot_time, started_at, attempts, success, value, reason, cause,
       category, open_ms, round_trip_ms, total_ms, close_code, tls_not_after, result, run_id)`;

const INSERT_RESULTS = `
  WITH inserted AS (
    INSERT INTO results (test_id, location_id, slot_time, result_id, agent_id, test_revision, started_at,
                         attempts, success, value, reason, cause, category, open_ms, round_trip_ms, total_ms,
                         close_code, tls_not_after, result)
    SELECT r.test_id, $1::uuid, r.slot_time, r.result_id, $2::text, r.test_revision, r.started_at, r.attempts,
           r.success, r.value, r.reason, r.cause, r.category, r.open_ms, r.round_trip_ms, r.total_ms,
           r.close_code, r.tls_not_after, r.result
      FROM ${BATCH}
     WHERE EXISTS (SELECT FROM tests t WHERE t.id = r.test_id)
    ON CONFLICT DO NOTHING
    RETURNING test_id, slot_time
  ),
  -- The rows stored, for the rollups (aggregation/): committed with them, so none is missed or counted twice.
  queued AS (
    INSERT INTO rollup_queue (location_id, test_ids, slot_times, result_count)
    SELECT $1::uuid, array_agg(test_id), array_agg(slot_time), count(*) FROM inserted HAVING count(*) > 0
  )
  -- Counting the results of deleted tests probes every test again: only when some were not inserted (a
  -- replay or a deleted test), as the untaken CASE branch's subquery is never evaluated.
  SELECT n.inserted,
         CASE WHEN n.inserted = cardinality($4::uuid[]) THEN 0
              ELSE (SELECT count(*) FROM unnest($4::uuid[]) AS u(test_id)
                     WHERE NOT EXISTS (SELECT FROM tests t WHERE t.id = u.test_id))::int END AS discarded
    FROM (SELECT count(*)::int AS inserted FROM inserted) n`;

/**
 * A run's location is completed once: a second result for it (a replay) changes nothing. Its status may
 * still be pending (the result overtook the dispatch) or no_agent (an agent connected meanwhile).
 */
const COMPLETE_RUN_RESULTS = `
  WITH r AS MATERIALIZED (SELECT * FROM ${BATCH}),
  completed AS (
    UPDATE run_results rr
       SET status = 'completed', agent_id = $2::text, result_id = r.result_id, test_revision = r.test_revision,
           slot_time = r.slot_time, started_at = r.started_at,
           attempts = r.attempts, success = r.success, value = r.value, reason = r.reason, cause = r.cause,
           category = r.category, open_ms = r.open_ms, round_trip_ms = r.round_trip_ms, total_ms = r.total_ms,
           close_code = r.close_code, tls_not_after = r.tls_not_after,
           result = r.result, completed_at = now(), updated_at = now()
      FROM r
     WHERE rr.run_id = r.run_id AND rr.location_id = $1::uuid AND rr.status <> 'completed'
       AND EXISTS (SELECT FROM runs WHERE runs.id = r.run_id AND runs.test_id = r.test_id)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM completed)::int AS inserted,
         (SELECT count(*) FROM r
           WHERE NOT EXISTS (SELECT FROM run_results rr JOIN runs ON runs.id = rr.run_id
                              WHERE rr.run_id = r.run_id AND rr.location_id = $1::uuid
                                AND runs.test_id = r.test_id))::int AS discarded`;

/** The array parameters of {@link BATCH}, in PostgreSQL's binary array format (binary-arrays.ts). */
function columns(rows: readonly StoredResult[]): Buffer[] {
  const n = rows.length;
  const resultIds = new Array<string>(n);
  const testIds = new Array<string>(n);
  const revisions = new Array<number>(n);
  const slots = new Array<number>(n);
  const started = new Array<number | undefined>(n);
  const attempts = new Array<number>(n);
  const success = new Array<boolean>(n);
  const values = new Array<number | undefined>(n);
  const reasons = new Array<string | undefined>(n);
  const causes = new Array<string | undefined>(n);
  const categories = new Array<string | undefined>(n);
  const openMs = new Array<number | undefined>(n);
  const roundTripMs = new Array<number | undefined>(n);
  const totalMs = new Array<number>(n);
  const closeCodes = new Array<number | undefined>(n);
  const notAfter = new Array<number | undefined>(n);
  const documents = new Array<Uint8Array>(n);
  const runIds = new Array<string | undefined>(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    resultIds[i] = r.result_id;
    testIds[i] = r.test_id;
    revisions[i] = r.test_revision;
    slots[i] = r.slot_time!.getTime();
    started[i] = r.started_time?.getTime();
    attempts[i] = r.attempts;
    success[i] = r.success;
    values[i] = r.value;
    // proto3's "not set" for a string is the empty string: stored as NULL.
    reasons[i] = r.reason || undefined;
    causes[i] = r.cause || undefined;
    categories[i] = r.category || undefined;
    openMs[i] = r.open_ms;
    roundTripMs[i] = r.round_trip_ms;
    totalMs[i] = r.total_ms;
    closeCodes[i] = r.close_code;
    notAfter[i] = r.tls_not_after?.getTime();
    documents[i] = r.result_json;
    runIds[i] = r.run_id;
  }
  return [
    uuidArray(resultIds),
    uuidArray(testIds),
    int8Array(revisions),
    timestamptzArray(slots),
    timestamptzArray(started),
    int4Array(attempts),
    boolArray(success),
    float8Array(values),
    textArray(reasons),
    textArray(causes),
    textArray(categories),
    float8Array(openMs),
    float8Array(roundTripMs),
    float8Array(totalMs),
    int4Array(closeCodes),
    timestamptzArray(notAfter),
    jsonArray(documents),
    uuidArray(runIds),
  ];
}
