import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { LocationEntity } from '../locations/location.entity';

/** An agent, registered by its first connection under its own stable id. */
@Entity({ name: 'agents' })
export class AgentEntity {
  @PrimaryColumn({ type: 'text', primaryKeyConstraintName: 'agents_pkey' })
  id!: string;

  @Index('agents_location_id')
  @Column({ name: 'location_id', type: 'uuid' })
  locationId!: string;

  /** Never loaded: declared for the foreign key (deleting a location deletes its agents). */
  @ManyToOne(() => LocationEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'location_id', foreignKeyConstraintName: 'agents_location_id_fkey' })
  location?: LocationEntity;

  @Column({ type: 'text' })
  hostname!: string;

  @Column({ type: 'text' })
  version!: string;

  @Column({ name: 'first_seen_at', type: 'timestamptz', precision: 3 })
  firstSeenAt!: Date;

  @Column({ name: 'last_seen_at', type: 'timestamptz', precision: 3 })
  lastSeenAt!: Date;
}
