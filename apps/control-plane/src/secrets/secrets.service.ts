import { Inject, Injectable } from '@nestjs/common';
import { secretInputSchema } from '@wsmon/contracts';
import { z } from 'zod';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../common/errors';
import { isUniqueViolation } from '../common/pg-errors';
import { validated } from '../common/validation';
import { TestsRepository } from '../tests/tests.repository';
import { ChangeBus } from '../database/change-bus';
import { SecretCipher } from './secret-cipher';
import { SecretEntity } from './secret.entity';
import { SecretsRepository } from './secrets.repository';

/** What any API shows of a secret: its name and when it changed, never its value. */
export interface SecretResponse {
  name: string;
  created_at: string;
  updated_at: string;
}

const toSecretResponse = (s: Pick<SecretEntity, 'name' | 'createdAt' | 'updatedAt'>): SecretResponse => ({
  name: s.name,
  created_at: s.createdAt.toISOString(),
  updated_at: s.updatedAt.toISOString(),
});

const secretValueSchema = z.strictObject({ value: secretInputSchema.shape.value });

@Injectable()
export class SecretsService {
  constructor(
    private readonly secrets: SecretsRepository,
    private readonly tests: TestsRepository,
    @Inject(SecretCipher) private readonly cipher: SecretCipher,
    private readonly bus: ChangeBus,
  ) {}

  async create(body: unknown): Promise<SecretResponse> {
    const input = validated(secretInputSchema, body);
    const entity = Object.assign(new SecretEntity(), {
      name: input.name,
      sealed: this.cipher.seal(input.name, input.value),
    });
    try {
      await this.secrets.insert(entity);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new AlreadyExistsError(`a secret named ${input.name} already exists`);
      throw error;
    }
    return toSecretResponse((await this.secrets.find(input.name))!);
  }

  async update(name: string, body: unknown): Promise<SecretResponse> {
    const { value } = validated(secretValueSchema, body);
    const updated = await this.secrets.replaceValue(name, this.cipher.seal(name, value));
    if (!updated) throw new NotFoundError('secret', name);
    // The referencing tests have new revisions: agents running them take the new value.
    await this.bus.publish('wsmon_config', 'secret');
    return toSecretResponse(updated);
  }

  async list(): Promise<SecretResponse[]> {
    return (await this.secrets.listNames()).map(toSecretResponse);
  }

  async delete(name: string): Promise<void> {
    if (!(await this.secrets.find(name))) throw new NotFoundError('secret', name);
    const users = await this.tests.referencingSecret(name);
    if (users.length) throw new ConflictError(`secret ${name} is referenced by test(s): ${users.join(', ')}`);
    await this.secrets.delete(name);
  }
}
