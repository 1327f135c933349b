import {
  Check,
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  UpdateDateColumn,
} from 'typeorm';
import type { AlertResolution, AlertState, LocationStatus } from '@wsmon/contracts';
import { LocationEntity } from '../locations/location.entity';
import { TestEntity } from '../tests/test.entity';

/** A test's status in one of its locations, as the last alert evaluation left it (see location-status.ts). */
@Entity({ name: 'location_statuses' })
@Check('location_statuses_status_check', `status IN ('healthy', 'unhealthy', 'no_data', 'no_agent')`)
@Check('location_statuses_result_status_check', `result_status IN ('healthy', 'unhealthy')`)
export class LocationStatusEntity {
  @PrimaryColumn({ name: 'test_id', type: 'uuid', primaryKeyConstraintName: 'location_statuses_pkey' })
  testId!: string;

  @Index('location_statuses_location_id')
  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'location_statuses_pkey' })
  locationId!: string;

  /** Never loaded: declared for the foreign key (deleting a test deletes its statuses). */
  @ManyToOne(() => TestEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'test_id', foreignKeyConstraintName: 'location_statuses_test_id_fkey' })
  test?: TestEntity;

  /** Never loaded: declared for the foreign key. */
  @ManyToOne(() => LocationEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'location_id', foreignKeyConstraintName: 'location_statuses_location_id_fkey' })
  location?: LocationEntity;

  @Column({ type: 'text' })
  status!: LocationStatus;

  @Column({ type: 'timestamptz', precision: 3 })
  since!: Date;

  /** Start of the current unbroken stretch of failing statuses; null while not failing. */
  @Column({ name: 'failing_since', type: 'timestamptz', precision: 3, nullable: true })
  failingSince!: Date | null;

  /** When the evaluation first saw the test enabled in this location: the first result is due from here. */
  @Column({ name: 'tracked_since', type: 'timestamptz', precision: 3 })
  trackedSince!: Date;

  /** The slot of the latest result taken into account: later ones are new. */
  @Column({ name: 'last_result_at', type: 'timestamptz', precision: 3, nullable: true })
  lastResultAt!: Date | null;

  /** What the results alone say (before no agent or no data): null before the first result. */
  @Column({ name: 'result_status', type: 'text', nullable: true })
  resultStatus!: 'healthy' | 'unhealthy' | null;

  /** The slot of the first result of the current run of `result_status`. */
  @Column({ name: 'result_since', type: 'timestamptz', precision: 3, nullable: true })
  resultSince!: Date | null;

  /** The reason of the latest unhealthy result (null when healthy). */
  @Column({ type: 'text', nullable: true })
  reason!: string | null;

  @Column({ type: 'text', nullable: true })
  cause!: string | null;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}

/** A failing location as an alert records it. */
export interface AlertLocation {
  location_id: string;
  location: string;
  status: LocationStatus;
  failing_since: string;
  reason: string | null;
  cause: string | null;
}

/** An alert event: opened when enough locations fail long enough, resolved when fewer fail. */
@Entity({ name: 'alerts' })
@Index('alerts_open_test_id', ['testId'], { unique: true, where: `state = 'open'` })
@Index('alerts_started_at_id', ['startedAt', 'id'])
@Index('alerts_test_id_started_at', ['testId', 'startedAt'])
@Check('alerts_state_check', `state IN ('open', 'resolved')`)
@Check('alerts_resolution_check', `resolution IN ('recovered', 'test_deleted', 'test_paused')`)
export class AlertEntity {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'alerts_pkey' })
  id!: string;

  /** No foreign key: an alert's history outlives its test. */
  @Column({ name: 'test_id', type: 'uuid' })
  testId!: string;

  @Column({ name: 'test_name', type: 'text' })
  testName!: string;

  /** The test's tags when the alert opened: webhooks filter by them, also once the test is gone. */
  @Column({ name: 'test_tags', type: 'text', array: true, default: [] })
  testTags!: string[];

  @Column({ type: 'text' })
  state!: AlertState;

  @Column({ name: 'min_failing_locations', type: 'integer' })
  minFailingLocations!: number;

  @Column({ name: 'for_minutes', type: 'integer' })
  forMinutes!: number;

  @Column({ type: 'jsonb' })
  locations!: AlertLocation[];

  @Column({ name: 'started_at', type: 'timestamptz', precision: 3 })
  startedAt!: Date;

  @Column({ name: 'resolved_at', type: 'timestamptz', precision: 3, nullable: true })
  resolvedAt!: Date | null;

  @Column({ type: 'text', nullable: true })
  resolution!: AlertResolution | null;
}
