import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agent sessions live in the agents table: every replica reads the same membership to assign tests,
 * so the replica holding a stream writes its state here. Tokens may expire.
 */
export class AgentSessions1763784000000 implements MigrationInterface {
  name = 'AgentSessions1763784000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE agent_tokens ADD COLUMN expires_at timestamptz(3)`);
    await db.query(`
      ALTER TABLE agents
        ADD COLUMN token_id uuid REFERENCES agent_tokens (id) ON DELETE SET NULL,
        ADD COLUMN session_id text,
        ADD COLUMN replica_id text,
        ADD COLUMN capabilities text[] NOT NULL DEFAULT '{}'::text[],
        ADD COLUMN connected_at timestamptz(3),
        ADD COLUMN disconnected_at timestamptz(3),
        ADD COLUMN last_heartbeat_at timestamptz(3),
        ADD COLUMN drained boolean NOT NULL DEFAULT false,
        ADD COLUMN config_revision bigint NOT NULL DEFAULT 0,
        ADD COLUMN held_tests integer NOT NULL DEFAULT 0,
        ADD COLUMN free_slots integer,
        ADD COLUMN in_flight integer,
        ADD COLUMN spool_depth integer,
        ADD COLUMN spool_dropped_total bigint`);
    await db.query(`CREATE INDEX agents_token_id ON agents (token_id)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX agents_token_id`);
    for (const column of [
      'token_id',
      'session_id',
      'replica_id',
      'capabilities',
      'connected_at',
      'disconnected_at',
      'last_heartbeat_at',
      'drained',
      'config_revision',
      'held_tests',
      'free_slots',
      'in_flight',
      'spool_depth',
      'spool_dropped_total',
    ]) {
      await db.query(`ALTER TABLE agents DROP COLUMN ${column}`);
    }
    await db.query(`ALTER TABLE agent_tokens DROP COLUMN expires_at`);
  }
}
