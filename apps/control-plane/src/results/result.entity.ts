import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * The measured fields of one run, as both `results` and `run_results` keep them: the summary an agent
 * sends beside the whole ProbeResult document (`AgentResult` in proto/wsmon/v1/agent.proto).
 */
export interface MeasuredFields {
  resultId: string | null;
  testRevision: string | null;
  slotTime: Date | null;
  startedAt: Date | null;
  attempts: number | null;
  success: boolean | null;
  value: number | null;
  reason: string | null;
  cause: string | null;
  category: string | null;
  openMs: number | null;
  roundTripMs: number | null;
  totalMs: number | null;
  closeCode: number | null;
  tlsNotAfter: Date | null;
  /** The ProbeResult document as the agent sent it (libs/contracts `ProbeResult`). */
  result: Record<string, unknown> | null;
}

/**
 * A scheduled run's result: at most one per test, location and slot (the primary key, in the order
 * test, slot, location: its one index serves reads by time across locations and within one).
 *
 * The table is partitioned by day of `slot_time` (see the Results migration), which TypeORM cannot
 * declare; it describes the parent table exactly, and never sees the partitions: its schema builder
 * only reads the tables of entities. Written by ResultsRepository's own SQL only (`unnest`, `ON
 * CONFLICT`), read through this entity.
 */
@Entity({ name: 'results' })
export class ResultEntity implements MeasuredFields {
  @PrimaryColumn({ name: 'test_id', type: 'uuid', primaryKeyConstraintName: 'results_pkey' })
  testId!: string;

  @PrimaryColumn({
    name: 'slot_time',
    type: 'timestamptz',
    precision: 3,
    primaryKeyConstraintName: 'results_pkey',
  })
  slotTime!: Date;

  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'results_pkey' })
  locationId!: string;

  @Column({ name: 'result_id', type: 'uuid' })
  resultId!: string;

  @Column({ name: 'agent_id', type: 'text' })
  agentId!: string;

  @Column({ name: 'test_revision', type: 'bigint' })
  testRevision!: string;

  @Column({ name: 'started_at', type: 'timestamptz', precision: 3, nullable: true })
  startedAt!: Date | null;

  @Column({ name: 'received_at', type: 'timestamptz', precision: 3, default: () => 'now()' })
  receivedAt!: Date;

  @Column({ type: 'integer' })
  attempts!: number;

  @Column({ type: 'boolean' })
  success!: boolean;

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

  @Column({ name: 'total_ms', type: 'double precision' })
  totalMs!: number;

  @Column({ name: 'close_code', type: 'integer', nullable: true })
  closeCode!: number | null;

  @Column({ name: 'tls_not_after', type: 'timestamptz', precision: 3, nullable: true })
  tlsNotAfter!: Date | null;

  @Column({ type: 'json' })
  result!: Record<string, unknown>;
}
