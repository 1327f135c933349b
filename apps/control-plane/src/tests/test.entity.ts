import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { AlertRule, ProbeConfig, RetryPolicy, Schedule } from '@wsmon/contracts';

@Entity({ name: 'tests' })
export class TestEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text', default: '' })
  description!: string;

  @Column({ type: 'text', array: true, default: () => "'{}'::text[]" })
  tags!: string[];

  @Column({ type: 'boolean', default: true })
  enabled!: boolean;

  /** The probe configuration exactly as the shared schema outputs it (defaults applied). */
  @Column({ type: 'jsonb' })
  probe!: ProbeConfig;

  @Column({ type: 'jsonb' })
  schedule!: Schedule;

  @Column({ type: 'jsonb' })
  retry!: RetryPolicy;

  @Column({ type: 'jsonb' })
  alert!: AlertRule;

  /** Names of the locations, ordered; kept in step with test_locations, which enforces existence. */
  @Column({ name: 'location_names', type: 'text', array: true })
  locationNames!: string[];

  /** From the global config_revision sequence: agents catch up from the revision they hold. */
  @Column({ type: 'bigint' })
  revision!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}

/** Which locations a test runs from; the foreign key refuses deleting a location in use. */
@Entity({ name: 'test_locations' })
export class TestLocationEntity {
  @PrimaryColumn({ name: 'test_id', type: 'uuid' })
  testId!: string;

  @PrimaryColumn({ name: 'location_id', type: 'uuid' })
  locationId!: string;
}
