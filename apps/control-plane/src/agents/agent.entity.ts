import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** An agent, registered by its first connection under its own stable id. */
@Entity({ name: 'agents' })
export class AgentEntity {
  @PrimaryColumn('text')
  id!: string;

  @Index()
  @Column({ name: 'location_id', type: 'uuid' })
  locationId!: string;

  @Column({ type: 'text' })
  hostname!: string;

  @Column({ type: 'text' })
  version!: string;

  @Column({ name: 'first_seen_at', type: 'timestamptz', precision: 3 })
  firstSeenAt!: Date;

  @Column({ name: 'last_seen_at', type: 'timestamptz', precision: 3 })
  lastSeenAt!: Date;
}
