import { Check, Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/**
 * What the results of one test at one location in one bucket (a minute, an hour or a day, UTC) add up to.
 * Written only by AggregationRepository's SQL (recomputed from the results or the finer rollups, never
 * incremented), read by the summaries. See the Aggregation migration.
 */
abstract class RollupColumns {
  @Column({ type: 'integer' })
  runs!: number;

  @Column({ type: 'integer' })
  failures!: number;

  /** Failures by reason code (a failure without one counts as `unknown`). */
  @Column({ name: 'failure_reasons', type: 'jsonb' })
  failureReasons!: Record<string, number>;

  /** Failures by category (a failure without one counts as `unknown`). */
  @Column({ name: 'failure_categories', type: 'jsonb' })
  failureCategories!: Record<string, number>;

  /** Results by the close code received, as a decimal string. */
  @Column({ name: 'close_codes', type: 'jsonb' })
  closeCodes!: Record<string, number>;

  /** Results closed with 1006, 1011, 1012 or 1013. */
  @Column({ name: 'abnormal_closes', type: 'integer' })
  abnormalCloses!: number;

  /** The handshake latency histogram: bucket indexes, increasing (latency-histogram.ts). */
  @Column({ name: 'handshake_buckets', type: 'smallint', array: true })
  handshakeBuckets!: number[];

  /** How many handshake latencies each bucket of `handshakeBuckets` holds. */
  @Column({ name: 'handshake_counts', type: 'integer', array: true })
  handshakeCounts!: number[];

  @Column({ name: 'handshake_max_ms', type: 'double precision', nullable: true })
  handshakeMaxMs!: number | null;

  @Column({ name: 'round_trip_buckets', type: 'smallint', array: true })
  roundTripBuckets!: number[];

  @Column({ name: 'round_trip_counts', type: 'integer', array: true })
  roundTripCounts!: number[];

  @Column({ name: 'round_trip_max_ms', type: 'double precision', nullable: true })
  roundTripMaxMs!: number | null;
}

@Entity({ name: 'rollups_minute' })
@Index('rollups_minute_bucket_start', ['bucketStart'])
export class MinuteRollupEntity extends RollupColumns {
  @PrimaryColumn({ name: 'test_id', type: 'uuid', primaryKeyConstraintName: 'rollups_minute_pkey' })
  testId!: string;

  @PrimaryColumn({
    name: 'bucket_start',
    type: 'timestamptz',
    primaryKeyConstraintName: 'rollups_minute_pkey',
  })
  bucketStart!: Date;

  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'rollups_minute_pkey' })
  locationId!: string;
}

@Entity({ name: 'rollups_hour' })
@Index('rollups_hour_bucket_start', ['bucketStart'])
export class HourRollupEntity extends RollupColumns {
  @PrimaryColumn({ name: 'test_id', type: 'uuid', primaryKeyConstraintName: 'rollups_hour_pkey' })
  testId!: string;

  @PrimaryColumn({ name: 'bucket_start', type: 'timestamptz', primaryKeyConstraintName: 'rollups_hour_pkey' })
  bucketStart!: Date;

  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'rollups_hour_pkey' })
  locationId!: string;
}

@Entity({ name: 'rollups_day' })
@Index('rollups_day_bucket_start', ['bucketStart'])
export class DayRollupEntity extends RollupColumns {
  @PrimaryColumn({ name: 'test_id', type: 'uuid', primaryKeyConstraintName: 'rollups_day_pkey' })
  testId!: string;

  @PrimaryColumn({ name: 'bucket_start', type: 'timestamptz', primaryKeyConstraintName: 'rollups_day_pkey' })
  bucketStart!: Date;

  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'rollups_day_pkey' })
  locationId!: string;
}

/** Results stored by one ingest transaction and not rolled up yet: each result's test and slot. */
@Entity({ name: 'rollup_queue' })
export class RollupQueueEntity {
  @PrimaryGeneratedColumn('identity', {
    type: 'bigint',
    generatedIdentity: 'ALWAYS',
    primaryKeyConstraintName: 'rollup_queue_pkey',
  })
  id!: string;

  @Column({ name: 'location_id', type: 'uuid' })
  locationId!: string;

  @Column({ name: 'test_ids', type: 'uuid', array: true })
  testIds!: string[];

  /** The slots of the results, in the order of `testIds`. */
  @Column({ name: 'slot_times', type: 'timestamptz', array: true })
  slotTimes!: Date[];

  @Column({ name: 'result_count', type: 'integer' })
  resultCount!: number;
}

/** An hour or a day of a test and location whose rollup is to be recomputed once it is over. */
@Entity({ name: 'rollup_pending' })
@Check('rollup_pending_resolution', `resolution IN ('hour', 'day')`)
export class RollupPendingEntity {
  @PrimaryColumn({ type: 'text', primaryKeyConstraintName: 'rollup_pending_pkey' })
  resolution!: 'hour' | 'day';

  @PrimaryColumn({
    name: 'bucket_start',
    type: 'timestamptz',
    primaryKeyConstraintName: 'rollup_pending_pkey',
  })
  bucketStart!: Date;

  @PrimaryColumn({ name: 'test_id', type: 'uuid', primaryKeyConstraintName: 'rollup_pending_pkey' })
  testId!: string;

  @PrimaryColumn({ name: 'location_id', type: 'uuid', primaryKeyConstraintName: 'rollup_pending_pkey' })
  locationId!: string;
}

/**
 * The one row (id 1) saying how far the rollups are complete: every result of a slot before
 * `minutesThrough` that was stored before the last rollup is in the minute rollups, and likewise the hour
 * rollups before `hoursThrough` and the day rollups before `daysThrough`.
 */
@Entity({ name: 'rollup_state' })
export class RollupStateEntity {
  @PrimaryColumn({ type: 'smallint', primaryKeyConstraintName: 'rollup_state_pkey' })
  id!: number;

  @Column({ name: 'minutes_through', type: 'timestamptz' })
  minutesThrough!: Date;

  @Column({ name: 'hours_through', type: 'timestamptz' })
  hoursThrough!: Date;

  @Column({ name: 'days_through', type: 'timestamptz' })
  daysThrough!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}

export const AGGREGATION_ENTITIES = [
  MinuteRollupEntity,
  HourRollupEntity,
  DayRollupEntity,
  RollupQueueEntity,
  RollupPendingEntity,
  RollupStateEntity,
];
