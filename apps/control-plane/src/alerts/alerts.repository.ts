import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type {
  AlertResolution,
  AlertRule,
  AlertState,
  ProbeConfig,
  RetryPolicy,
  Schedule,
} from '@wsmon/contracts';
import type { DataSource, EntityManager } from 'typeorm';
import type { Cursor } from '../common/pagination';
import { isUuid } from '../common/validation';
import { AlertEntity, LocationStatusEntity, type AlertLocation } from './alert.entity';
import type { LocationState, ResultSample } from './location-status';

/** A test with what its status needs: its rules and its locations, by name. */
export interface StatusTest {
  readonly id: string;
  readonly name: string;
  readonly tags: string[];
  readonly enabled: boolean;
  readonly probe: ProbeConfig;
  readonly schedule: Schedule;
  readonly retry: RetryPolicy;
  readonly alert: AlertRule;
  readonly updatedAt: Date;
  readonly locations: readonly { readonly id: string; readonly name: string }[];
}

/** A location state with its keys, as stored. */
export interface StoredLocationState extends LocationState {
  readonly testId: string;
  readonly locationId: string;
}

/** Where to read new results from: after the slot a state last took into account. */
export interface ResultCursor {
  readonly testId: string;
  readonly locationId: string;
  readonly after: Date | null;
}

export interface NewAlert {
  readonly id: string;
  readonly testId: string;
  readonly testName: string;
  readonly testTags: readonly string[];
  readonly rule: AlertRule;
  readonly locations: readonly AlertLocation[];
}

export interface AlertFilter {
  readonly testId?: string;
  readonly state?: AlertState;
}

/** The advisory lock one replica holds while it evaluates alerts. */
export const EVALUATION_LOCK = [0x77736d61, 1] as const; // 'wsma'

const key = (testId: string, locationId: string) => `${testId}/${locationId}`;

@Injectable()
export class AlertsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Runs `work` in one transaction holding the evaluation lock, or does nothing (and returns false)
   * while another replica holds it: replicas never evaluate at the same time, so an alert is opened,
   * resolved and notified once.
   */
  async exclusively(work: (manager: EntityManager) => Promise<void>): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const [row] = await manager.query<{ locked: boolean }[]>(
        'SELECT pg_try_advisory_xact_lock($1, $2) AS locked',
        [...EVALUATION_LOCK],
      );
      if (!row!.locked) return false;
      await work(manager);
      return true;
    });
  }

  /** The database's clock: every replica judges time by it. Inside a transaction, its start. */
  async now(manager: EntityManager = this.dataSource.manager): Promise<Date> {
    const [row] = await manager.query<{ now: Date }[]>('SELECT now() AS now');
    return row!.now;
  }

  /** Every test (or one) with its locations by name; ordered by name. */
  async tests(testId?: string): Promise<StatusTest[]> {
    if (testId !== undefined && !isUuid(testId)) return [];
    const rows = await this.dataSource.query<
      (Omit<StatusTest, 'locations' | 'updatedAt'> & {
        updated_at: Date;
        location_ids: string[];
        location_names: string[];
      })[]
    >(
      `SELECT t.id, t.name, t.tags, t.enabled, t.probe, t.schedule, t.retry, t.alert, t.updated_at,
              array_remove(array_agg(l.id::text ORDER BY l.name), NULL) AS location_ids,
              array_remove(array_agg(l.name ORDER BY l.name), NULL) AS location_names
         FROM tests t
         LEFT JOIN test_locations tl ON tl.test_id = t.id
         LEFT JOIN locations l ON l.id = tl.location_id
        WHERE $1::uuid IS NULL OR t.id = $1::uuid
        GROUP BY t.id
        ORDER BY t.name, t.id`,
      [testId ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      tags: r.tags,
      enabled: r.enabled,
      probe: r.probe,
      schedule: r.schedule,
      retry: r.retry,
      alert: r.alert,
      updatedAt: r.updated_at,
      locations: r.location_ids.map((id, i) => ({ id, name: r.location_names[i]! })),
    }));
  }

  /** The stored states of these tests' locations, by `testId/locationId`. */
  async states(
    testIds: readonly string[],
    manager: EntityManager = this.dataSource.manager,
  ): Promise<Map<string, StoredLocationState>> {
    if (!testIds.length) return new Map();
    const rows = await manager
      .createQueryBuilder(LocationStatusEntity, 's')
      .where('s.test_id = ANY(:testIds)', { testIds: [...testIds] })
      .getMany();
    return new Map(rows.map((r) => [key(r.testId, r.locationId), r]));
  }

  /**
   * The results after each cursor, oldest first, at most `limit` per location (the latest ones): one
   * statement, one backward scan of the primary key per location.
   */
  async newResults(
    cursors: readonly ResultCursor[],
    limit: number,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<Map<string, ResultSample[]>> {
    const found = new Map<string, ResultSample[]>();
    if (!cursors.length) return found;
    const rows = await manager.query<
      {
        test_id: string;
        location_id: string;
        slot_time: Date;
        success: boolean;
        value: number | null;
        reason: string | null;
        cause: string | null;
      }[]
    >(
      `SELECT c.test_id, c.location_id, r.slot_time, r.success, r.value, r.reason, r.cause
         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS c (test_id, location_id, after)
        CROSS JOIN LATERAL (
              SELECT slot_time, success, value, reason, cause FROM results r
               WHERE r.test_id = c.test_id AND r.location_id = c.location_id
                 AND r.slot_time > coalesce(c.after, '-infinity')
               ORDER BY r.slot_time DESC
               LIMIT $4) r
        ORDER BY c.test_id, c.location_id, r.slot_time`,
      [cursors.map((c) => c.testId), cursors.map((c) => c.locationId), cursors.map((c) => c.after), limit],
    );
    for (const r of rows) {
      const k = key(r.test_id, r.location_id);
      let list = found.get(k);
      if (!list) found.set(k, (list = []));
      list.push({
        slotTime: r.slot_time,
        success: r.success,
        value: r.value,
        reason: r.reason,
        cause: r.cause,
      });
    }
    return found;
  }

  /**
   * Writes these states, only for locations the test still runs from (a test or location removed
   * meanwhile is skipped), and deletes the states of locations no enabled test runs from: a test
   * paused and resumed, or a location added again, starts afresh.
   */
  async saveStates(manager: EntityManager, states: readonly StoredLocationState[]): Promise<void> {
    if (states.length) {
      const column = <K extends keyof StoredLocationState>(k: K) => states.map((s) => s[k]);
      await manager.query(
        `INSERT INTO location_statuses (test_id, location_id, status, since, failing_since, tracked_since,
                                        last_result_at, result_status, result_since, reason, cause, updated_at)
         SELECT s.*, now()
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                       $6::timestamptz[], $7::timestamptz[], $8::text[], $9::timestamptz[], $10::text[], $11::text[])
                AS s (test_id, location_id, status, since, failing_since, tracked_since, last_result_at,
                      result_status, result_since, reason, cause)
          WHERE EXISTS (SELECT FROM test_locations tl
                         WHERE tl.test_id = s.test_id AND tl.location_id = s.location_id)
         ON CONFLICT (test_id, location_id) DO UPDATE SET
           status = excluded.status, since = excluded.since, failing_since = excluded.failing_since,
           tracked_since = excluded.tracked_since, last_result_at = excluded.last_result_at,
           result_status = excluded.result_status, result_since = excluded.result_since,
           reason = excluded.reason, cause = excluded.cause, updated_at = now()`,
        [
          column('testId'),
          column('locationId'),
          column('status'),
          column('since'),
          column('failingSince'),
          column('trackedSince'),
          column('lastResultAt'),
          column('resultStatus'),
          column('resultSince'),
          column('reason'),
          column('cause'),
        ],
      );
    }
    await manager.query(
      `DELETE FROM location_statuses s
        WHERE NOT EXISTS (SELECT FROM test_locations tl JOIN tests t ON t.id = tl.test_id AND t.enabled
                           WHERE tl.test_id = s.test_id AND tl.location_id = s.location_id)`,
    );
  }

  /** Open alerts, of one test or all, by test id. */
  async openAlerts(
    testId?: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<Map<string, AlertEntity>> {
    if (testId !== undefined && !isUuid(testId)) return new Map();
    const rows = await manager.findBy(AlertEntity, {
      state: 'open',
      ...(testId === undefined ? {} : { testId }),
    });
    return new Map(rows.map((a) => [a.testId, a]));
  }

  /** Opens an alert; null when the test has an open one already (the partial unique index decides). */
  async openAlert(manager: EntityManager, alert: NewAlert): Promise<AlertEntity | null> {
    const rows = await manager.query<{ id: string }[]>(
      `INSERT INTO alerts (id, test_id, test_name, test_tags, state, min_failing_locations, for_minutes,
                           locations, started_at)
       VALUES ($1, $2, $3, $4, 'open', $5, $6, $7::jsonb, now())
       ON CONFLICT (test_id) WHERE state = 'open' DO NOTHING
       RETURNING id`,
      [
        alert.id,
        alert.testId,
        alert.testName,
        alert.testTags,
        alert.rule.min_failing_locations,
        alert.rule.for_minutes,
        JSON.stringify(alert.locations),
      ],
    );
    return rows.length ? manager.findOneByOrFail(AlertEntity, { id: alert.id }) : null;
  }

  async updateAlertLocations(
    manager: EntityManager,
    alertId: string,
    locations: readonly AlertLocation[],
  ): Promise<void> {
    await manager.query(`UPDATE alerts SET locations = $2::jsonb WHERE id = $1 AND state = 'open'`, [
      alertId,
      JSON.stringify(locations),
    ]);
  }

  /** Resolves an open alert; null when it was not open (any more). */
  async resolveAlert(
    manager: EntityManager,
    alertId: string,
    resolution: AlertResolution,
    locations: readonly AlertLocation[],
  ): Promise<AlertEntity | null> {
    const [rows] = await manager.query<[{ id: string }[], number]>(
      `UPDATE alerts SET state = 'resolved', resolved_at = now(), resolution = $2, locations = $3::jsonb
        WHERE id = $1 AND state = 'open'
       RETURNING id`,
      [alertId, resolution, JSON.stringify(locations)],
    );
    return rows.length ? manager.findOneByOrFail(AlertEntity, { id: alertId }) : null;
  }

  /** Alerts newest first (by start, then id), after the cursor. */
  listAlerts(filter: AlertFilter, limit: number, after: Cursor | undefined): Promise<AlertEntity[]> {
    const query = this.dataSource.manager
      .createQueryBuilder(AlertEntity, 'a')
      .orderBy('a.started_at', 'DESC')
      .addOrderBy('a.id', 'DESC')
      .limit(limit);
    if (filter.testId !== undefined) query.andWhere('a.test_id = :testId', { testId: filter.testId });
    if (filter.state !== undefined) query.andWhere('a.state = :state', { state: filter.state });
    if (after) {
      query.andWhere('(a.started_at, a.id) < (:startedAt, :id)', {
        startedAt: after.createdAt,
        id: after.id,
      });
    }
    return query.getMany();
  }
}

export { key as locationKey };
