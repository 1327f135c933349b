import type { MigrationInterface, QueryRunner } from 'typeorm';

const ROLLUP_TABLES = ['rollups_minute', 'rollups_hour', 'rollups_day'] as const;

/**
 * Rollups of results per test, location and minute, hour and day (apps/control-plane/src/aggregation).
 *
 * - `rollup_queue`: what ingest stored and the rollups have not taken yet. Every ingest transaction that
 *   stores results adds one row naming them (its location, and each result's test and slot), so the rows
 *   and their mention commit together; rolling up deletes the rows it took. Existing results are queued
 *   here, one row per location and hour.
 * - `rollups_minute|hour|day`: counts, failure reasons, categories and close codes (JSON objects of counts),
 *   and the handshake and round-trip latency histograms (sparse: bucket indexes and counts, see
 *   latency-histogram.ts) with their exact maxima. Keyed like the results' own index: test, bucket, location.
 * - `rollup_pending`: hours and days whose finer rollups changed, rolled up again once they are over.
 * - `rollup_state`: one row, how far each resolution is complete (the summaries read finer data beyond).
 */
export class Aggregation1763956800000 implements MigrationInterface {
  name = 'Aggregation1763956800000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE rollup_queue (
        id bigint GENERATED ALWAYS AS IDENTITY,
        location_id uuid NOT NULL,
        test_ids uuid[] NOT NULL,
        slot_times timestamptz[] NOT NULL,
        result_count integer NOT NULL,
        CONSTRAINT rollup_queue_pkey PRIMARY KEY (id)
      )`);
    // A batch's arrays (24 KiB for 1000 results) are random uuids: compressing them only costs ingest time.
    await db.query(`ALTER TABLE rollup_queue ALTER COLUMN test_ids SET STORAGE EXTERNAL`);
    await db.query(`ALTER TABLE rollup_queue ALTER COLUMN slot_times SET STORAGE EXTERNAL`);

    for (const table of ROLLUP_TABLES) {
      await db.query(`
        CREATE TABLE ${table} (
          test_id uuid NOT NULL,
          bucket_start timestamptz NOT NULL,
          location_id uuid NOT NULL,
          runs integer NOT NULL,
          failures integer NOT NULL,
          failure_reasons jsonb NOT NULL,
          failure_categories jsonb NOT NULL,
          close_codes jsonb NOT NULL,
          abnormal_closes integer NOT NULL,
          handshake_buckets smallint[] NOT NULL,
          handshake_counts integer[] NOT NULL,
          handshake_max_ms double precision,
          round_trip_buckets smallint[] NOT NULL,
          round_trip_counts integer[] NOT NULL,
          round_trip_max_ms double precision,
          CONSTRAINT ${table}_pkey PRIMARY KEY (test_id, bucket_start, location_id)
        )`);
      // Retention deletes by age across tests.
      await db.query(`CREATE INDEX ${table}_bucket_start ON ${table} (bucket_start)`);
    }

    await db.query(`
      CREATE TABLE rollup_pending (
        resolution text NOT NULL,
        bucket_start timestamptz NOT NULL,
        test_id uuid NOT NULL,
        location_id uuid NOT NULL,
        CONSTRAINT rollup_pending_pkey PRIMARY KEY (resolution, bucket_start, test_id, location_id),
        CONSTRAINT rollup_pending_resolution CHECK (resolution IN ('hour', 'day'))
      )`);

    await db.query(`
      CREATE TABLE rollup_state (
        id smallint NOT NULL,
        minutes_through timestamptz NOT NULL,
        hours_through timestamptz NOT NULL,
        days_through timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT rollup_state_pkey PRIMARY KEY (id)
      )`);
    await db.query(`
      INSERT INTO rollup_state (id, minutes_through, hours_through, days_through)
      VALUES (1, 'epoch', 'epoch', 'epoch')`);

    await db.query(`
      INSERT INTO rollup_queue (location_id, test_ids, slot_times, result_count)
      SELECT location_id, array_agg(test_id), array_agg(slot_time), count(*)
        FROM results
       GROUP BY location_id, date_bin('3600 seconds', slot_time, 'epoch')
       ORDER BY min(slot_time)`);
  }

  async down(db: QueryRunner): Promise<void> {
    for (const table of ['rollup_state', 'rollup_pending', ...ROLLUP_TABLES, 'rollup_queue']) {
      await db.query(`DROP TABLE ${table}`);
    }
  }
}
