import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** A secret's value, encrypted (AES-256-GCM); the API never returns it. */
@Entity({ name: 'secrets' })
export class SecretEntity {
  @PrimaryColumn({ type: 'text', primaryKeyConstraintName: 'secrets_pkey' })
  name!: string;

  /** iv (12 bytes) + auth tag (16 bytes) + ciphertext. */
  @Column({ type: 'bytea' })
  sealed!: Buffer;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}
