import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Results of scheduled runs, and on-demand runs with one row per location.
 *
 * `results` is partitioned by day of `slot_time`; the partitions (`results_pYYYYMMDD`) are created by
 * ResultsRepository ahead of the rows, never here. Its primary key is the natural one, (test, location,
 * slot): at most one result per test, location and slot, whichever of its copies arrives first. No foreign
 * keys: deleting a test or a location must not cascade through millions of rows; results of a deleted test
 * are discarded at ingest, and the rows kept age out with their partitions.
 */
export class Results1763870400000 implements MigrationInterface {
  name = 'Results1763870400000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE results (
        test_id uuid NOT NULL,
        location_id uuid NOT NULL,
        slot_time timestamptz(3) NOT NULL,
        result_id uuid NOT NULL,
        agent_id text NOT NULL,
        test_revision bigint NOT NULL,
        started_at timestamptz(3),
        received_at timestamptz(3) NOT NULL DEFAULT now(),
        attempts integer NOT NULL,
        success boolean NOT NULL,
        value double precision,
        reason text,
        cause text,
        category text,
        open_ms double precision,
        round_trip_ms double precision,
        total_ms double precision NOT NULL,
        close_code integer,
        tls_not_after timestamptz(3),
        result json NOT NULL,
        CONSTRAINT results_pkey PRIMARY KEY (test_id, location_id, slot_time)
      ) PARTITION BY RANGE (slot_time)`);
    // A test's results newest first, across its locations; the primary key serves one location's.
    await db.query(`CREATE INDEX results_test_id_slot_time ON results (test_id, slot_time, location_id)`);

    await db.query(`
      CREATE TABLE runs (
        id uuid PRIMARY KEY,
        test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
        test_revision bigint NOT NULL,
        requested_by uuid REFERENCES api_keys (id) ON DELETE SET NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await db.query(`CREATE INDEX runs_test_id ON runs (test_id)`);
    await db.query(`
      CREATE TABLE run_results (
        run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        location_id uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
        status text NOT NULL DEFAULT 'pending'
          CHECK (status IN ('pending', 'dispatched', 'no_agent', 'completed')),
        agent_id text,
        result_id uuid,
        test_revision bigint,
        slot_time timestamptz(3),
        started_at timestamptz(3),
        attempts integer,
        success boolean,
        value double precision,
        reason text,
        cause text,
        category text,
        open_ms double precision,
        round_trip_ms double precision,
        total_ms double precision,
        close_code integer,
        tls_not_after timestamptz(3),
        result json,
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        completed_at timestamptz(3),
        PRIMARY KEY (run_id, location_id)
      )`);
    await db.query(`CREATE INDEX run_results_location_id ON run_results (location_id)`);
  }

  async down(db: QueryRunner): Promise<void> {
    // Dropping the partitioned table drops its partitions.
    for (const table of ['run_results', 'runs', 'results']) await db.query(`DROP TABLE ${table}`);
  }
}
