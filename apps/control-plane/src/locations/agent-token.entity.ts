import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  Unique,
} from 'typeorm';
import { LocationEntity } from './location.entity';

/** A location's credential for its agents; only a hash of the secret is kept. */
@Entity({ name: 'agent_tokens' })
@Unique('agent_tokens_prefix_key', ['prefix'])
export class AgentTokenEntity {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'agent_tokens_pkey' })
  id!: string;

  @Index('agent_tokens_location_id')
  @Column({ name: 'location_id', type: 'uuid' })
  locationId!: string;

  /** Never loaded: declared for the foreign key (deleting a location deletes its tokens). */
  @ManyToOne(() => LocationEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'location_id', foreignKeyConstraintName: 'agent_tokens_location_id_fkey' })
  location?: LocationEntity;

  @Column({ type: 'text' })
  name!: string;

  /** Public part of the token, for lookup without scanning hashes. */
  @Column({ type: 'text' })
  prefix!: string;

  @Column({ name: 'secret_hash', type: 'text' })
  secretHash!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'last_used_at', type: 'timestamptz', precision: 3, nullable: true })
  lastUsedAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', precision: 3, nullable: true })
  revokedAt!: Date | null;

  /** Past this the token authenticates nothing; null: no expiry. */
  @Column({ name: 'expires_at', type: 'timestamptz', precision: 3, nullable: true })
  expiresAt!: Date | null;
}
