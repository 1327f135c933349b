import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { In, type DataSource, type EntityManager, type Repository } from 'typeorm';
import type { Cursor } from '../common/pagination';
import { isUuid } from '../common/validation';
import { TestEntity, TestLocationEntity } from './test.entity';

export interface TestFilter {
  readonly tag?: string;
  readonly location?: string;
  readonly enabled?: boolean;
  readonly text?: string;
}

@Injectable()
export class TestsRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(TestEntity) private readonly tests: Repository<TestEntity>,
  ) {}

  find(id: string): Promise<TestEntity | null> {
    return isUuid(id) ? this.tests.findOneBy({ id }) : Promise.resolve(null);
  }

  list(filter: TestFilter, pageSize: number, after: Cursor | undefined): Promise<TestEntity[]> {
    const query = this.tests
      .createQueryBuilder('t')
      .orderBy('t.created_at')
      .addOrderBy('t.id')
      .take(pageSize + 1);
    if (after) query.andWhere('(t.created_at, t.id) > (:createdAt, :id)', after);
    // Containment, not = ANY(): only @> can use the GIN index on tags.
    if (filter.tag !== undefined) query.andWhere('t.tags @> ARRAY[:tag]::text[]', { tag: filter.tag });
    if (filter.location !== undefined)
      query.andWhere(':location = ANY(t.location_names)', { location: filter.location });
    if (filter.enabled !== undefined) query.andWhere('t.enabled = :enabled', { enabled: filter.enabled });
    if (filter.text !== undefined) {
      const pattern = `%${filter.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query.andWhere('(t.name ILIKE :pattern OR t.description ILIKE :pattern)', { pattern });
    }
    return query.getMany();
  }

  /**
   * Writes a test, its location links and a new revision in one transaction: agents that catch
   * up from a revision never see a test without its locations.
   */
  async save(test: TestEntity, locationIds: readonly string[]): Promise<TestEntity> {
    return this.dataSource.transaction(async (manager) => {
      test.revision = await nextRevision(manager);
      const saved = await manager.save(TestEntity, test);
      await manager.delete(TestLocationEntity, { testId: test.id });
      await manager.insert(
        TestLocationEntity,
        locationIds.map((locationId) => ({ testId: test.id, locationId })),
      );
      return saved;
    });
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.tests.delete({ id });
    return (result.affected ?? 0) > 0;
  }

  /** Every enabled test's id and revision: what agents run, cheap to compare with what they hold. */
  async assignableRevisions(): Promise<Map<string, number>> {
    const rows = await this.tests.query<{ id: string; revision: string }[]>(
      `SELECT id, revision FROM tests WHERE enabled`,
    );
    return new Map(rows.map((r) => [r.id, Number(r.revision)]));
  }

  /** These tests whole, each with the ids of the locations it runs from. */
  async withLocationIds(ids: readonly string[]): Promise<{ test: TestEntity; locationIds: string[] }[]> {
    if (!ids.length) return [];
    const tests = await this.tests.findBy({ id: In([...ids]) });
    const links = await this.dataSource.manager.findBy(TestLocationEntity, { testId: In([...ids]) });
    const byTest = new Map<string, string[]>();
    for (const link of links) byTest.set(link.testId, [...(byTest.get(link.testId) ?? []), link.locationId]);
    return tests.map((test) => ({ test, locationIds: byTest.get(test.id) ?? [] }));
  }

  /** The configuration counter as it stands. */
  async currentRevision(): Promise<number> {
    const [row] = await this.tests.query<{ revision: string }[]>(
      `SELECT CASE WHEN is_called THEN last_value ELSE 0 END::text AS revision FROM config_revision`,
    );
    return Number(row!.revision);
  }

  /** A new revision for a change that no test row records (an agent joining, a test deleted). */
  async takeRevision(): Promise<number> {
    return Number(await nextRevision(this.dataSource.manager));
  }

  /** Names of tests whose probe configuration references the secret. */
  async referencingSecret(name: string): Promise<string[]> {
    const rows = await this.tests
      .createQueryBuilder('t')
      .select('t.name', 'name')
      .where('t.probe::text ~ :pattern', { pattern: secretReferencePattern(name) })
      .getRawMany<{ name: string }>();
    return rows.map((r) => r.name);
  }
}

/** A PostgreSQL regex for `{{ secrets.NAME }}` in a probe's JSON text (names are [A-Za-z0-9_]). */
export function secretReferencePattern(name: string): string {
  return `\\{\\{\\s*secrets\\.${name}\\s*\\}\\}`;
}

async function nextRevision(manager: EntityManager): Promise<string> {
  const [row] = await manager.query<{ revision: string }[]>(
    `SELECT nextval('config_revision')::text AS revision`,
  );
  return row!.revision;
}
