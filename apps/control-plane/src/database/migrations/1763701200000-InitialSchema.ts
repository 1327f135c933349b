import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Locations, agents, tests, secrets and API keys. Plain SQL that PostgreSQL 15 to 18 all run. */
export class InitialSchema1763701200000 implements MigrationInterface {
  name = 'InitialSchema1763701200000';

  async up(db: QueryRunner): Promise<void> {
    // Timestamps keep milliseconds, as JavaScript does: list cursors built from them are exact.
    // Every configuration change takes the next value: agents resume from the revision they hold.
    await db.query(`CREATE SEQUENCE config_revision AS bigint START 1`);
    await db.query(`
      CREATE TABLE locations (
        id uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        kind text NOT NULL CHECK (kind IN ('private', 'managed')),
        region text,
        labels jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await db.query(`
      CREATE TABLE agent_tokens (
        id uuid PRIMARY KEY,
        location_id uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
        name text NOT NULL,
        prefix text NOT NULL UNIQUE,
        secret_hash text NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        last_used_at timestamptz(3),
        revoked_at timestamptz(3)
      )`);
    await db.query(`CREATE INDEX agent_tokens_location_id ON agent_tokens (location_id)`);
    await db.query(`
      CREATE TABLE agents (
        id text PRIMARY KEY,
        location_id uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
        hostname text NOT NULL,
        version text NOT NULL,
        first_seen_at timestamptz(3) NOT NULL,
        last_seen_at timestamptz(3) NOT NULL
      )`);
    await db.query(`CREATE INDEX agents_location_id ON agents (location_id)`);
    await db.query(`
      CREATE TABLE tests (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        tags text[] NOT NULL DEFAULT '{}'::text[],
        enabled boolean NOT NULL DEFAULT true,
        probe jsonb NOT NULL,
        schedule jsonb NOT NULL,
        retry jsonb NOT NULL,
        alert jsonb NOT NULL,
        location_names text[] NOT NULL,
        revision bigint NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await db.query(`CREATE INDEX tests_tags ON tests USING gin (tags)`);
    await db.query(`CREATE INDEX tests_created_at_id ON tests (created_at, id)`);
    await db.query(`
      CREATE TABLE test_locations (
        test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
        location_id uuid NOT NULL REFERENCES locations (id) ON DELETE RESTRICT,
        PRIMARY KEY (test_id, location_id)
      )`);
    await db.query(`CREATE INDEX test_locations_location_id ON test_locations (location_id)`);
    await db.query(`
      CREATE TABLE secrets (
        name text PRIMARY KEY,
        sealed bytea NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await db.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
        prefix text NOT NULL UNIQUE,
        secret_hash text NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        last_used_at timestamptz(3),
        revoked_at timestamptz(3)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    for (const table of [
      'api_keys',
      'secrets',
      'test_locations',
      'tests',
      'agents',
      'agent_tokens',
      'locations',
    ]) {
      await db.query(`DROP TABLE ${table}`);
    }
    await db.query(`DROP SEQUENCE config_revision`);
  }
}
