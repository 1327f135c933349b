import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  secretReferences,
  testInputSchema,
  testListQuerySchema,
  testPatchSchema,
  type AlertRule,
  type ConfigFieldError,
  type ProbeConfig,
  type RetryPolicy,
  type Schedule,
  type TestInput,
} from '@wsmon/contracts';
import { ChangeBus } from '../database/change-bus';
import { InvalidArgumentError, NotFoundError } from '../common/errors';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validated } from '../common/validation';
import { LocationsRepository } from '../locations/locations.repository';
import { SecretsRepository } from '../secrets/secrets.repository';
import { TestEntity } from './test.entity';
import { TestsRepository } from './tests.repository';

export interface TestResponse {
  id: string;
  name: string;
  description: string;
  tags: string[];
  enabled: boolean;
  probe: ProbeConfig;
  schedule: Schedule;
  locations: string[];
  retry: RetryPolicy;
  alert: AlertRule;
  revision: number;
  created_at: string;
  updated_at: string;
}

export const toTestResponse = (t: TestEntity): TestResponse => ({
  id: t.id,
  name: t.name,
  description: t.description,
  tags: t.tags,
  enabled: t.enabled,
  probe: t.probe,
  schedule: t.schedule,
  locations: t.locationNames,
  retry: t.retry,
  alert: t.alert,
  revision: Number(t.revision),
  created_at: t.createdAt.toISOString(),
  updated_at: t.updatedAt.toISOString(),
});

/** Tests: the one service behind REST and gRPC. */
@Injectable()
export class TestsService {
  constructor(
    private readonly tests: TestsRepository,
    private readonly locations: LocationsRepository,
    private readonly secrets: SecretsRepository,
    private readonly bus: ChangeBus,
  ) {}

  async create(body: unknown): Promise<TestResponse> {
    const input = validated(testInputSchema, body);
    return this.write(Object.assign(new TestEntity(), { id: randomUUID() }), input);
  }

  async list(query: unknown): Promise<Page<TestResponse>> {
    const q = validated(testListQuerySchema, query);
    const filter = { tag: q.tag, location: q.location, enabled: q.enabled, text: q.q };
    const rows = await this.tests.list(filter, q.page_size, decodeCursor(q.page_token));
    return toPage(rows, q.page_size, toTestResponse);
  }

  async get(id: string): Promise<TestResponse> {
    return toTestResponse(await this.find(id));
  }

  async replace(id: string, body: unknown): Promise<TestResponse> {
    const input = validated(testInputSchema, body);
    return this.write(await this.find(id), input);
  }

  async patch(id: string, body: unknown): Promise<TestResponse> {
    const patch = validated(testPatchSchema, body);
    const test = await this.find(id);
    const merged: TestInput = { ...fromEntity(test), ...definedOnly(patch) };
    return this.write(test, merged);
  }

  async setEnabled(id: string, enabled: boolean): Promise<TestResponse> {
    const test = await this.find(id);
    if (test.enabled === enabled) return toTestResponse(test);
    return this.write(test, { ...fromEntity(test), enabled });
  }

  async delete(id: string): Promise<void> {
    if (!(await this.tests.delete(id))) throw new NotFoundError('test', id);
    await this.bus.publish('wsmon_config', 'deleted');
  }

  private async find(id: string): Promise<TestEntity> {
    const test = await this.tests.find(id);
    if (!test) throw new NotFoundError('test', id);
    return test;
  }

  /** Checks what the schema cannot (locations and secrets exist), then saves with a new revision. */
  private async write(test: TestEntity, input: TestInput): Promise<TestResponse> {
    const errors: ConfigFieldError[] = [];
    const found = await this.locations.findByNames(input.locations);
    const idByName = new Map(found.map((l) => [l.name, l.id]));
    input.locations.forEach((name, i) => {
      if (!idByName.has(name)) {
        errors.push({
          path: `locations[${i}]`,
          rule: 'exists',
          message: `locations[${i}]: no location is named ${name}`,
          value: name,
        });
      }
    });
    const referenced = secretReferences(input.probe);
    const existing = await this.secrets.existingNames(referenced);
    for (const name of referenced.filter((n) => !existing.has(n))) {
      errors.push({
        path: 'probe',
        rule: 'secret_exists',
        message: `probe: references the secret ${name}, which does not exist`,
      });
    }
    if (errors.length) throw new InvalidArgumentError(errors);

    Object.assign(test, {
      name: input.name,
      description: input.description,
      tags: input.tags,
      enabled: input.enabled,
      probe: input.probe,
      schedule: input.schedule,
      retry: input.retry,
      alert: input.alert,
      locationNames: input.locations,
    });
    const saved = await this.tests.save(
      test,
      input.locations.map((name) => idByName.get(name)!),
    );
    // After the commit: every replica re-reads the tests and updates the agents concerned.
    await this.bus.publish('wsmon_config', saved.revision);
    return toTestResponse(saved);
  }
}

function fromEntity(t: TestEntity): TestInput {
  return {
    name: t.name,
    description: t.description,
    tags: t.tags,
    enabled: t.enabled,
    probe: t.probe,
    schedule: t.schedule,
    locations: t.locationNames,
    retry: t.retry,
    alert: t.alert,
  };
}

function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}
