import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source-options';

/** The advisory lock key replicas take around migrations ('wsmg'). */
const MIGRATION_LOCK = 0x77736d67;

/**
 * Runs pending migrations with an advisory lock held, so that replicas starting together on an
 * empty or older database migrate one after another instead of racing (TypeORM takes no lock).
 * The lock lives on its own connection: whoever holds it migrates, the others wait, then find
 * nothing pending.
 */
export async function migrateExclusively(url: string): Promise<void> {
  const lock = new Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const dataSource = new DataSource({ ...dataSourceOptions(url, false), migrationsRun: false });
    await dataSource.initialize();
    try {
      await dataSource.runMigrations({ transaction: 'each' });
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await lock.end().catch(() => undefined);
  }
}
