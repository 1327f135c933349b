import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Status and alerting (docs/alerting.md).
 *
 * - `location_statuses`: each test's status in each of its locations, as the last evaluation left it;
 *   derived data, deleted with its test or location.
 * - `alerts`: alert events. No foreign key to tests: the history outlives a deleted test. At most one
 *   open alert per test (a partial unique index), whichever replica evaluates.
 * - `webhooks`, their `webhook_deliveries` (one per notification, pending until delivered or given up:
 *   they survive a restart, and replicas claim due ones with FOR UPDATE SKIP LOCKED) and every attempt.
 */
export class Alerts1764043200000 implements MigrationInterface {
  name = 'Alerts1764043200000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE location_statuses (
        test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
        location_id uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
        status text NOT NULL CHECK (status IN ('healthy', 'unhealthy', 'no_data', 'no_agent')),
        since timestamptz(3) NOT NULL,
        failing_since timestamptz(3),
        tracked_since timestamptz(3) NOT NULL,
        last_result_at timestamptz(3),
        result_status text CHECK (result_status IN ('healthy', 'unhealthy')),
        result_since timestamptz(3),
        reason text,
        cause text,
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT location_statuses_pkey PRIMARY KEY (test_id, location_id)
      )`);
    await db.query(`CREATE INDEX location_statuses_location_id ON location_statuses (location_id)`);

    await db.query(`
      CREATE TABLE alerts (
        id uuid NOT NULL,
        test_id uuid NOT NULL,
        test_name text NOT NULL,
        test_tags text[] NOT NULL DEFAULT '{}'::text[],
        state text NOT NULL CHECK (state IN ('open', 'resolved')),
        min_failing_locations integer NOT NULL,
        for_minutes integer NOT NULL,
        locations jsonb NOT NULL,
        started_at timestamptz(3) NOT NULL,
        resolved_at timestamptz(3),
        resolution text CHECK (resolution IN ('recovered', 'test_deleted', 'test_paused')),
        CONSTRAINT alerts_pkey PRIMARY KEY (id)
      )`);
    await db.query(`CREATE UNIQUE INDEX alerts_open_test_id ON alerts (test_id) WHERE state = 'open'`);
    await db.query(`CREATE INDEX alerts_started_at_id ON alerts (started_at, id)`);
    await db.query(`CREATE INDEX alerts_test_id_started_at ON alerts (test_id, started_at)`);

    await db.query(`
      CREATE TABLE webhooks (
        id uuid NOT NULL,
        name text NOT NULL DEFAULT '',
        url text NOT NULL,
        secret bytea NOT NULL,
        test_ids uuid[] NOT NULL DEFAULT '{}'::uuid[],
        tags text[] NOT NULL DEFAULT '{}'::text[],
        created_by uuid REFERENCES api_keys (id) ON DELETE SET NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT webhooks_pkey PRIMARY KEY (id)
      )`);
    await db.query(`CREATE INDEX webhooks_created_at_id ON webhooks (created_at, id)`);

    await db.query(`
      CREATE TABLE webhook_deliveries (
        id uuid NOT NULL,
        webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event text NOT NULL CHECK (event IN ('alert.opened', 'alert.resolved', 'test')),
        alert_id uuid REFERENCES alerts (id) ON DELETE CASCADE,
        test_id uuid,
        payload jsonb NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz(3) NOT NULL DEFAULT now(),
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        completed_at timestamptz(3),
        CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id)
      )`);
    // The dispatchers' question, "which pending deliveries are due", reads only pending rows.
    await db.query(
      `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending'`,
    );
    await db.query(
      `CREATE INDEX webhook_deliveries_webhook_id_created_at ON webhook_deliveries (webhook_id, created_at, id)`,
    );
    await db.query(`CREATE INDEX webhook_deliveries_alert_id ON webhook_deliveries (alert_id)`);

    await db.query(`
      CREATE TABLE webhook_delivery_attempts (
        delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
        attempt integer NOT NULL,
        started_at timestamptz(3) NOT NULL,
        duration_ms double precision NOT NULL,
        status_code integer,
        error text,
        CONSTRAINT webhook_delivery_attempts_pkey PRIMARY KEY (delivery_id, attempt)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    for (const table of [
      'webhook_delivery_attempts',
      'webhook_deliveries',
      'webhooks',
      'alerts',
      'location_statuses',
    ]) {
      await db.query(`DROP TABLE ${table}`);
    }
  }
}
