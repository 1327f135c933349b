import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  UpdateDateColumn,
} from 'typeorm';
import { ApiKeyEntity } from '../auth/api-key.entity';
import { LocationEntity } from '../locations/location.entity';
import { TestEntity } from '../tests/test.entity';
import type { MeasuredFields } from './result.entity';

/** Where an on-demand run stands at one location. */
export const RUN_LOCATION_STATUSES = ['pending', 'dispatched', 'no_agent', 'completed'] as const;
export type RunLocationStatus = (typeof RUN_LOCATION_STATUSES)[number];

/** An on-demand run of one test, from every location of the test. */
@Entity({ name: 'runs' })
export class RunEntity {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'runs_pkey' })
  id!: string;

  @Index('runs_test_id')
  @Column({ name: 'test_id', type: 'uuid' })
  testId!: string;

  /** Never loaded: declared for the foreign key (deleting a test deletes its runs). */
  @ManyToOne(() => TestEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'test_id', foreignKeyConstraintName: 'runs_test_id_fkey' })
  test?: TestEntity;

  /** The test's revision when the run was requested. */
  @Column({ name: 'test_revision', type: 'bigint' })
  testRevision!: string;

  /** The API key that asked for the run. */
  @Column({ name: 'requested_by', type: 'uuid', nullable: true })
  requestedBy!: string | null;

  /** Never loaded: declared for the foreign key. */
  @ManyToOne(() => ApiKeyEntity, { nullable: true, onDelete: 'SET NULL' })
  @JoinColumn({ name: 'requested_by', foreignKeyConstraintName: 'runs_requested_by_fkey' })
  requester?: ApiKeyEntity;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}

/**
 * One location of an on-demand run: pending until the agent side dispatches it to an agent (or finds
 * none), completed once, by the first result that arrives for it.
 */
@Entity({ name: 'run_results' })
@Check('run_results_status_check', `status IN ('pending', 'dispatched', 'no_agent', 'completed')`)
export class RunResultEntity implements MeasuredFields {
  @PrimaryColumn({ name: 'run_id', type: 'uuid', primaryKeyConstraintName: 'run_results_pkey' })
  runId!: string;

  @Index('run_results_location_id')
  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'run_results_pkey' })
  locationId!: string;

  /** Never loaded: declared for the foreign key (deleting a run deletes its rows). */
  @ManyToOne(() => RunEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'run_id', foreignKeyConstraintName: 'run_results_run_id_fkey' })
  run?: RunEntity;

  /** Never loaded: declared for the foreign key (deleting a location deletes its rows). */
  @ManyToOne(() => LocationEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'location_id', foreignKeyConstraintName: 'run_results_location_id_fkey' })
  location?: LocationEntity;

  @Column({ type: 'text', default: 'pending' })
  status!: RunLocationStatus;

  /** The agent the run was dispatched to, then the one whose result completed it. */
  @Column({ name: 'agent_id', type: 'text', nullable: true })
  agentId!: string | null;

  @Column({ name: 'result_id', type: 'uuid', nullable: true })
  resultId!: string | null;

  @Column({ name: 'test_revision', type: 'bigint', nullable: true })
  testRevision!: string | null;

  /** When the agent started the run (an on-demand run has no slot). */
  @Column({ name: 'slot_time', type: 'timestamptz', precision: 3, nullable: true })
  slotTime!: Date | null;

  @Column({ name: 'started_at', type: 'timestamptz', precision: 3, nullable: true })
  startedAt!: Date | null;

  @Column({ type: 'integer', nullable: true })
  attempts!: number | null;

  @Column({ type: 'boolean', nullable: true })
  success!: boolean | null;

  @Column({ type: 'double precision', nullable: true })
  value!: number | null;

  @Column({ type: 'text', nullable: true })
  reason!: string | null;

  @Column({ type: 'text', nullable: true })
  cause!: string | null;

  @Column({ type: 'text', nullable: true })
  category!: string | null;

  @Column({ name: 'open_ms', type: 'double precision', nullable: true })
  openMs!: number | null;

  @Column({ name: 'round_trip_ms', type: 'double precision', nullable: true })
  roundTripMs!: number | null;

  @Column({ name: 'total_ms', type: 'double precision', nullable: true })
  totalMs!: number | null;

  @Column({ name: 'close_code', type: 'integer', nullable: true })
  closeCode!: number | null;

  @Column({ name: 'tls_not_after', type: 'timestamptz', precision: 3, nullable: true })
  tlsNotAfter!: Date | null;

  @Column({ type: 'json', nullable: true })
  result!: Record<string, unknown> | null;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;

  @Column({ name: 'completed_at', type: 'timestamptz', precision: 3, nullable: true })
  completedAt!: Date | null;
}
