import { Injectable, Logger } from '@nestjs/common';
import { MissingSecretError, resolveSecretReferences, secretReferences } from '@wsmon/contracts';
import type { TestAssignment } from '@wsmon/proto';
import { SecretCipher } from '../secrets/secret-cipher';
import { SecretsRepository } from '../secrets/secrets.repository';
import type { TestEntity } from '../tests/test.entity';
import { TestsRepository } from '../tests/tests.repository';

/** An enabled test as agents receive it. */
export interface CatalogTest {
  readonly id: string;
  readonly revision: number;
  readonly locationIds: readonly string[];
  /** SECRET-BEARING: the probe with its secrets resolved. Goes on agent streams only. */
  readonly assignment: TestAssignment;
}

/**
 * The enabled tests, in memory, with their secrets resolved: every stream of this replica draws on
 * it. A refresh compares ids and revisions (one light query) and loads only the tests that
 * changed, so a change reaches agents fast however many tests there are.
 */
@Injectable()
export class TestCatalog {
  private readonly logger = new Logger('test-catalog');
  private readonly tests = new Map<string, CatalogTest>();
  private readonly byLocation = new Map<string, Set<string>>();
  /** Locations whose tests changed since the last takeChangedLocations(). */
  private changedLocations = new Set<string>();
  private refreshing: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly repository: TestsRepository,
    private readonly secrets: SecretsRepository,
    private readonly cipher: SecretCipher,
  ) {}

  /** Tests of a location. */
  forLocation(locationId: string): CatalogTest[] {
    return [...(this.byLocation.get(locationId) ?? [])].map((id) => this.tests.get(id)!);
  }

  get(testId: string): CatalogTest | undefined {
    return this.tests.get(testId);
  }

  /** The configuration counter as it stands: a synchronisation's revision when no test brings a newer one. */
  currentRevision(): Promise<number> {
    return this.repository.currentRevision();
  }

  /** Brings the catalog up to the database; concurrent calls share one pass plus at most one more. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.again = false;
          await this.load();
        } while (this.again);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** The locations whose tests changed (added, removed, new revision) since the last call. */
  takeChangedLocations(): Set<string> {
    const changed = this.changedLocations;
    this.changedLocations = new Set();
    return changed;
  }

  /** A test whole for an on-demand run, enabled or not. */
  async assignmentFor(test: TestEntity): Promise<TestAssignment> {
    const [assignment] = await this.assignments([test]);
    if (assignment instanceof MissingSecretError) throw assignment;
    return assignment!;
  }

  private async load(): Promise<void> {
    const revisions = await this.repository.assignableRevisions();
    for (const id of [...this.tests.keys()]) if (!revisions.has(id)) this.drop(id);
    const changed = [...revisions]
      .filter(([id, rev]) => this.tests.get(id)?.revision !== rev)
      .map(([id]) => id);
    for (let i = 0; i < changed.length; i += 1000) {
      const rows = await this.repository.withLocationIds(changed.slice(i, i + 1000));
      const assignments = await this.assignments(rows.map((r) => r.test));
      rows.forEach(({ test, locationIds }, index) => {
        const assignment = assignments[index]!;
        this.drop(test.id);
        // Disabled since the first query, or a secret deleted since the test was saved: not assignable.
        if (!test.enabled) return;
        if (assignment instanceof MissingSecretError) {
          this.logger.warn(`test ${test.id} not assigned: ${assignment.message}`);
          return;
        }
        this.tests.set(test.id, { id: test.id, revision: Number(test.revision), locationIds, assignment });
        for (const locationId of locationIds) {
          this.changedLocations.add(locationId);
          let set = this.byLocation.get(locationId);
          if (!set) this.byLocation.set(locationId, (set = new Set()));
          set.add(test.id);
        }
      });
    }
  }

  private drop(id: string): void {
    const test = this.tests.get(id);
    if (!test) return;
    this.tests.delete(id);
    for (const locationId of test.locationIds) {
      this.byLocation.get(locationId)?.delete(id);
      this.changedLocations.add(locationId);
    }
  }

  /** Resolves secrets once per batch of tests; a test whose secret is gone gets the error in its place. */
  private async assignments(tests: readonly TestEntity[]): Promise<(TestAssignment | MissingSecretError)[]> {
    const names = [...new Set(tests.flatMap((t) => secretReferences(t.probe)))];
    const values = new Map(
      (await this.secrets.sealed(names)).map((s) => [s.name, this.cipher.open(s.name, s.sealed)]),
    );
    return tests.map((test) => {
      try {
        return {
          test_id: test.id,
          revision: Number(test.revision),
          name: test.name,
          probe: resolveSecretReferences(test.probe, values),
          schedule: test.schedule,
          retry: test.retry,
        };
      } catch (error) {
        if (error instanceof MissingSecretError) return error;
        throw error;
      }
    });
  }
}
