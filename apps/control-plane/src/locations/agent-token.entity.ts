import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** A location's credential for its agents; only a hash of the secret is kept. */
@Entity({ name: 'agent_tokens' })
export class AgentTokenEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Index()
  @Column({ name: 'location_id', type: 'uuid' })
  locationId!: string;

  @Column({ type: 'text' })
  name!: string;

  /** Public part of the token, for lookup without scanning hashes. */
  @Column({ type: 'text', unique: true })
  prefix!: string;

  @Column({ name: 'secret_hash', type: 'text' })
  secretHash!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'last_used_at', type: 'timestamptz', precision: 3, nullable: true })
  lastUsedAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', precision: 3, nullable: true })
  revokedAt!: Date | null;
}
