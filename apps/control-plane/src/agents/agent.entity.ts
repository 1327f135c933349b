import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { AgentTokenEntity } from '../locations/agent-token.entity';
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

  /** The token of the current or last session: revoking it ends the session. */
  @Index('agents_token_id')
  @Column({ name: 'token_id', type: 'uuid', nullable: true })
  tokenId!: string | null;

  /** Never loaded: declared for the foreign key. */
  @ManyToOne(() => AgentTokenEntity, { nullable: true, onDelete: 'SET NULL' })
  @JoinColumn({ name: 'token_id', foreignKeyConstraintName: 'agents_token_id_fkey' })
  token?: AgentTokenEntity;

  /** The current or last session; null until the agent first connected. */
  @Column({ name: 'session_id', type: 'text', nullable: true })
  sessionId!: string | null;

  /** The control-plane replica holding the session's stream. */
  @Column({ name: 'replica_id', type: 'text', nullable: true })
  replicaId!: string | null;

  @Column({ type: 'text', array: true, default: [] })
  capabilities!: string[];

  @Column({ name: 'connected_at', type: 'timestamptz', precision: 3, nullable: true })
  connectedAt!: Date | null;

  /** Null while connected. Its tests stay with it for a grace period after this. */
  @Column({ name: 'disconnected_at', type: 'timestamptz', precision: 3, nullable: true })
  disconnectedAt!: Date | null;

  @Column({ name: 'last_heartbeat_at', type: 'timestamptz', precision: 3, nullable: true })
  lastHeartbeatAt!: Date | null;

  /** Gave its tests up (DrainDone): they move at once, without the grace period. */
  @Column({ type: 'boolean', default: false })
  drained!: boolean;

  @Column({ name: 'config_revision', type: 'bigint', default: 0 })
  configRevision!: string;

  @Column({ name: 'held_tests', type: 'integer', default: 0 })
  heldTests!: number;

  @Column({ name: 'free_slots', type: 'integer', nullable: true })
  freeSlots!: number | null;

  @Column({ name: 'in_flight', type: 'integer', nullable: true })
  inFlight!: number | null;

  @Column({ name: 'spool_depth', type: 'integer', nullable: true })
  spoolDepth!: number | null;

  @Column({ name: 'spool_dropped_total', type: 'bigint', nullable: true })
  spoolDroppedTotal!: string | null;
}
