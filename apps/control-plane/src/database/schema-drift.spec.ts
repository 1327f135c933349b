import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocationEntity } from '../locations/location.entity';
import { ResultEntity } from '../results/result.entity';
import { partitionName, ResultsRepository } from '../results/results.repository';
import { RunResultEntity } from '../results/run.entity';
import { TestEntity } from '../tests/test.entity';
import { dataSourceOptions, MIGRATIONS } from './data-source-options';

let pg: TestPostgres;
const open: DataSource[] = [];

beforeAll(async () => {
  pg = await startTestPostgres();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((dataSource) => dataSource.destroy()));
});

afterAll(async () => {
  await pg?.stop();
});

/** A new database, migrated by the checked-in migrations exactly as the control plane does at start. */
async function migratedDatabase(): Promise<DataSource> {
  const dataSource = new DataSource(dataSourceOptions(await pg.createDatabase(), false));
  open.push(dataSource);
  await dataSource.initialize();
  expect(await dataSource.showMigrations(), 'no migration left pending').toBe(false);
  return dataSource;
}

/** The SQL `typeorm migration:generate` would write: what the database lacks to match the entities. */
async function drift(dataSource: DataSource): Promise<string[]> {
  const { upQueries } = await dataSource.driver.createSchemaBuilder().log();
  return upQueries.map(({ query }) => query.trim());
}

function driftMessage(queries: readonly string[]): string {
  return (
    'The entities do not describe the schema the migrations create. TypeORM would run:\n' +
    `${queries.map((query) => `  ${query};`).join('\n')}\n` +
    'Adapt the entities to the migrations, or add a migration for a deliberate change.'
  );
}

/**
 * Everything in the public schema but TypeORM's own `migrations` table and what belongs to it: relations
 * (tables, sequences, indexes, views), free-standing types and functions.
 */
async function schemaObjects(dataSource: DataSource): Promise<string[]> {
  const rows = await dataSource.query<{ object: string }[]>(`
    SELECT format('%s %s', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index'
                                          WHEN 'v' THEN 'view' ELSE c.relkind::text END, c.relname) AS object
      FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
     WHERE c.relnamespace = 'public'::regnamespace
       AND 'public.migrations'::regclass NOT IN (c.oid, coalesce(i.indrelid, 0))
       AND NOT EXISTS (SELECT FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.refobjid = 'public.migrations'::regclass)
    UNION ALL
    SELECT format('type %s', t.typname)
      FROM pg_type t
     WHERE t.typnamespace = 'public'::regnamespace AND t.typrelid = 0
       AND NOT EXISTS (SELECT FROM pg_type e WHERE e.oid = t.typelem AND e.typrelid <> 0)
    UNION ALL
    SELECT format('function %s', p.proname) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    ORDER BY 1`);
  return rows.map((row) => row.object);
}

interface CheckDefinition {
  readonly table: string;
  readonly name: string;
  readonly definition: string;
}

/** The check constraints of the entities' tables, as PostgreSQL prints them. */
async function checksInDatabase(dataSource: DataSource): Promise<CheckDefinition[]> {
  return dataSource.query<CheckDefinition[]>(
    `SELECT conrelid::regclass::text AS table, conname AS name, pg_get_constraintdef(oid) AS definition
       FROM pg_constraint
      WHERE contype = 'c' AND conrelid = ANY($1::regclass[])
      ORDER BY 1, 2`,
    [dataSource.entityMetadatas.map((metadata) => metadata.tableName)],
  );
}

/**
 * The entities' `@Check`s, as PostgreSQL prints them: each is added to its table in a transaction that is
 * rolled back, so that both sides of the comparison are in PostgreSQL's own words.
 */
async function declaredChecks(dataSource: DataSource): Promise<CheckDefinition[]> {
  const runner = dataSource.createQueryRunner();
  await runner.startTransaction();
  try {
    const declared: CheckDefinition[] = [];
    for (const metadata of dataSource.entityMetadatas) {
      for (const [n, check] of metadata.checks.entries()) {
        const probe = `declared_${n}`;
        await runner.query(
          `ALTER TABLE "${metadata.tableName}" ADD CONSTRAINT ${probe} CHECK (${check.expression})`,
        );
        const [row] = await runner.manager.query<{ definition: string }[]>(
          `SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
            WHERE conrelid = $1::regclass AND conname = $2`,
          [metadata.tableName, probe],
        );
        declared.push({ table: metadata.tableName, name: check.name, definition: row!.definition });
      }
    }
    return declared.sort((a, b) => `${a.table}.${a.name}`.localeCompare(`${b.table}.${b.name}`));
  } finally {
    await runner.rollbackTransaction();
    await runner.release();
  }
}

describe(dataSourceOptions.name, () => {
  it('has entities that describe exactly the schema the migrations create', async () => {
    const dataSource = await migratedDatabase();
    const queries = await drift(dataSource);
    expect(queries, driftMessage(queries)).toEqual([]);
  });

  it('has migrations whose down undoes their up, leaving an empty schema, and which then run again', async () => {
    const dataSource = await migratedDatabase();
    const migrated = await schemaObjects(dataSource);
    expect(migrated).toContain('sequence config_revision');
    expect(migrated).toContain('table locations');

    for (let undone = 0; undone < MIGRATIONS.length; undone++) await dataSource.undoLastMigration();
    expect(await schemaObjects(dataSource)).toEqual([]);
    expect(await dataSource.query('SELECT name FROM migrations')).toEqual([]);

    expect(await dataSource.runMigrations()).toHaveLength(MIGRATIONS.length);
    expect(await schemaObjects(dataSource)).toEqual(migrated);
    const queries = await drift(dataSource);
    expect(queries, driftMessage(queries)).toEqual([]);
  });

  // `results` is partitioned by day; its partitions are made at run time and are no entity's tables.
  it('has entities that still describe the schema once partitions of results exist', async () => {
    const dataSource = await migratedDatabase();
    const results = new ResultsRepository(
      dataSource,
      dataSource.getRepository(ResultEntity),
      dataSource.getRepository(RunResultEntity),
      dataSource.getRepository(TestEntity),
      dataSource.getRepository(LocationEntity),
    );
    await results.ensurePartitions([20_000, 20_001]);
    expect(await schemaObjects(dataSource)).toContain(`table ${partitionName(20_000)}`);
    const queries = await drift(dataSource);
    expect(queries, driftMessage(queries)).toEqual([]);
  });

  // TypeORM matches check constraints, and indexes it is told not to synchronize, by name alone.
  it('has entities whose check constraints and unsynchronized indexes are those of the migrations', async () => {
    const dataSource = await migratedDatabase();
    expect(await declaredChecks(dataSource)).toEqual(await checksInDatabase(dataSource));

    const unsynchronized = dataSource.entityMetadatas.flatMap((metadata) =>
      metadata.indices
        .filter((index) => !index.synchronize)
        .map((index) => ({
          table: metadata.tableName,
          name: index.name,
          // Unsynchronized, TypeORM resolves no columns: those named in the decorator, as database names.
          columns: (Array.isArray(index.givenColumnNames) ? index.givenColumnNames : []).map(
            (property) => metadata.findColumnWithPropertyPath(property)?.databaseName ?? property,
          ),
        })),
    );
    expect(unsynchronized).not.toEqual([]);
    for (const index of unsynchronized) {
      const [found] = await dataSource.query<{ table: string; columns: string[] }[]>(
        `SELECT i.indrelid::regclass::text AS table, array_agg(a.attname::text ORDER BY k.n) AS columns
           FROM pg_index i
          CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indexrelid = to_regclass(format('public.%I', $1::text))
          GROUP BY i.indrelid`,
        [index.name],
      );
      expect(found, `index ${index.name}`).toEqual({ table: index.table, columns: index.columns });
    }
  });
});
