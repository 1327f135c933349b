import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { liveSessionSql } from '../agents/agents.repository';
import { SLOT_WINDOW_MS } from '../results/results.service';

/** The latest scheduled result of an enabled test in one of its locations. */
export interface LatestResultRow {
  readonly test_id: string;
  readonly test_name: string;
  readonly location: string;
  /** The result's slot, unix seconds. */
  readonly slot_s: number;
  readonly success: boolean;
  readonly open_ms: number | null;
  /** The first message round trip, else the first ping's pong. */
  readonly round_trip_ms: number | null;
  readonly total_ms: number;
  /** The leaf certificate's expiry, unix seconds. */
  readonly tls_not_after_s: number | null;
  readonly reason: string | null;
  readonly cause: string | null;
  readonly category: string | null;
}

/** One location as `/metrics` reports it, across every replica. */
export interface LocationHealthRow {
  readonly location: string;
  /** Agents with an open session, a fresh heartbeat and not drained: they run the location's tests. */
  readonly connected_agents: number;
  readonly enabled_tests: number;
}

/**
 * How far back the latest result is looked for: a test runs at least weekly (`INTERVAL_S.max`), and a
 * day more covers a slow cron. Each (test, location) costs one backward probe of the results' primary
 * key per day partition until a row is found, so the newest partition almost always answers.
 */
const LOOKBACK_MS = 8 * 86_400_000;

/**
 * One statement for every (enabled test, location) pair: the pair's latest row of `results` through its
 * primary key (test, location, slot), newest partition first. The ping time is read from the ProbeResult
 * document only for tests that ping and measured no message round trip.
 */
const LATEST_RESULTS = `
  SELECT t.id AS test_id, t.name AS test_name, l.name AS location, r.*
    FROM tests t
    JOIN test_locations tl ON tl.test_id = t.id
    JOIN locations l ON l.id = tl.location_id
   CROSS JOIN LATERAL (
     SELECT extract(epoch FROM r.slot_time)::float8 AS slot_s, r.success, r.open_ms, r.total_ms,
            coalesce(r.round_trip_ms,
                     CASE WHEN t.probe->>'ping_mode' = 'protocol' OR t.probe->'steps' IS NOT NULL
                          THEN (r.result->'timings'->>'ping_ms')::float8 END) AS round_trip_ms,
            extract(epoch FROM r.tls_not_after)::float8 AS tls_not_after_s, r.reason, r.cause, r.category
       FROM results r
      WHERE r.test_id = t.id AND r.location_id = tl.location_id
        AND r.slot_time >= $1 AND r.slot_time < $2
      ORDER BY r.slot_time DESC
      LIMIT 1) r
   WHERE t.enabled
   ORDER BY t.name, t.id, l.name`;

/**
 * Every location with its live agents (judged by the database's clock, as the assignment judges them)
 * and its enabled tests: a location with tests and no agent runs nothing.
 */
const LOCATION_HEALTH = `
  SELECT l.name AS location,
         (SELECT count(*) FROM agents a
           WHERE a.location_id = l.id AND ${liveSessionSql('a', '$1')})::int
           AS connected_agents,
         (SELECT count(*) FROM test_locations tl JOIN tests t ON t.id = tl.test_id
           WHERE tl.location_id = l.id AND t.enabled)::int AS enabled_tests
    FROM locations l
   ORDER BY l.name`;

/** The reads behind `/metrics`: one statement each, whatever the number of tests and locations. */
@Injectable()
export class MetricsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  latestResults(now = Date.now()): Promise<LatestResultRow[]> {
    return this.dataSource.query<LatestResultRow[]>(LATEST_RESULTS, [
      new Date(now - LOOKBACK_MS),
      new Date(now + SLOT_WINDOW_MS.future),
    ]);
  }

  /** `livenessMs`: how recent an agent's last heartbeat must be for it to count as connected. */
  locationHealth(livenessMs: number): Promise<LocationHealthRow[]> {
    return this.dataSource.query<LocationHealthRow[]>(LOCATION_HEALTH, [livenessMs]);
  }
}
