import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `results` keeps one index instead of two: its primary key becomes (test, slot, location), the order of
 * the secondary index it replaces. Every row written updated both, and ingest is the hot path; the one
 * index serves a test's results by time across locations as before, and one location's within a time
 * range as an index condition on its last column. The key's columns, so its uniqueness, are unchanged.
 */
export class ResultsOneIndex1764129600000 implements MigrationInterface {
  name = 'ResultsOneIndex1764129600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX results_test_id_slot_time`);
    await db.query(`ALTER TABLE results DROP CONSTRAINT results_pkey`);
    await db.query(
      `ALTER TABLE results ADD CONSTRAINT results_pkey PRIMARY KEY (test_id, slot_time, location_id)`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE results DROP CONSTRAINT results_pkey`);
    await db.query(
      `ALTER TABLE results ADD CONSTRAINT results_pkey PRIMARY KEY (test_id, location_id, slot_time)`,
    );
    await db.query(`CREATE INDEX results_test_id_slot_time ON results (test_id, slot_time, location_id)`);
  }
}
