import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, type Repository } from 'typeorm';
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

  save(secret: SecretEntity): Promise<SecretEntity> {
    return this.secrets.save(secret);
  }

  async delete(name: string): Promise<void> {
    await this.secrets.delete({ name });
  }
}
