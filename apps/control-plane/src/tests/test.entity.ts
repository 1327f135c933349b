import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  UpdateDateColumn,
} from 'typeorm';
import type { AlertRule, ProbeConfig, RetryPolicy, Schedule } from '@wsmon/contracts';
import { LocationEntity } from '../locations/location.entity';

@Entity({ name: 'tests' })
@Index('tests_created_at_id', ['createdAt', 'id'])
export class TestEntity {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'tests_pkey' })
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text', default: '' })
  description!: string;

  /**
   * GIN-indexed by the migration. TypeORM knows no index methods but btree and GiST (`spatial`), so the index
   * is declared unsynchronized: TypeORM neither creates nor drops it (schema-drift.spec.ts checks it exists).
   */
  @Index('tests_tags', { synchronize: false })
  @Column({ type: 'text', array: true, default: [] })
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
  @PrimaryColumn({ name: 'test_id', type: 'uuid', primaryKeyConstraintName: 'test_locations_pkey' })
  testId!: string;

  @Index('test_locations_location_id')
  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'test_locations_pkey' })
  locationId!: string;

  /** Never loaded: declared for the foreign key (deleting a test deletes its links). */
  @ManyToOne(() => TestEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'test_id', foreignKeyConstraintName: 'test_locations_test_id_fkey' })
  test?: TestEntity;

  /** Never loaded: declared for the foreign key (a location in use cannot be deleted). */
  @ManyToOne(() => LocationEntity, { nullable: false, onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'location_id', foreignKeyConstraintName: 'test_locations_location_id_fkey' })
  location?: LocationEntity;
}
