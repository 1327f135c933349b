import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, type Repository } from 'typeorm';
import { secretReferencePattern } from '../tests/tests.repository';
import { SecretEntity } from './secret.entity';

@Injectable()
export class SecretsRepository {
  constructor(@InjectRepository(SecretEntity) private readonly secrets: Repository<SecretEntity>) {}

  find(name: string): Promise<SecretEntity | null> {
    return this.secrets.findOneBy({ name });
  }

  async existingNames(names: readonly string[]): Promise<Set<string>> {
    if (!names.length) return new Set();
    const rows = await this.secrets.find({ select: { name: true }, where: { name: In([...names]) } });
    return new Set(rows.map((r) => r.name));
  }

  /** Sealed values of these secrets, for the agents that run the tests referencing them. */
  sealed(names: readonly string[]): Promise<Pick<SecretEntity, 'name' | 'sealed'>[]> {
    if (!names.length) return Promise.resolve([]);
    return this.secrets.find({ select: { name: true, sealed: true }, where: { name: In([...names]) } });
  }

  /** Names and dates only: the sealed values never leave the repository through a list. */
  listNames(): Promise<Pick<SecretEntity, 'name' | 'createdAt' | 'updatedAt'>[]> {
    return this.secrets.find({
      select: { name: true, createdAt: true, updatedAt: true },
      order: { name: 'ASC' },
    });
  }

  insert(secret: SecretEntity): Promise<unknown> {
    return this.secrets.insert(secret);
  }

  /**
   * Replaces a secret's value and, in the same transaction, gives every test that references it a
   * new configuration revision: agents hold configurations with secrets resolved, and only a new
   * revision makes them take the new value. Atomic, so a crash cannot leave agents on the old one.
   */
  async replaceValue(name: string, sealed: Buffer): Promise<SecretEntity | null> {
    return this.secrets.manager.transaction(async (manager) => {
      const updated = await manager.update(SecretEntity, { name }, { sealed });
      if (!updated.affected) return null;
      await manager.query(
        `UPDATE tests SET revision = nextval('config_revision'), updated_at = now() WHERE probe::text ~ $1`,
        [secretReferencePattern(name)],
      );
      return manager.findOneBy(SecretEntity, { name });
    });
  }

  async delete(name: string): Promise<void> {
    await this.secrets.delete({ name });
  }
}
