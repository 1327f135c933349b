import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
} from 'typeorm';
import type { WebhookDeliveryState, WebhookEvent, WebhookNotification } from '@wsmon/contracts';
import { ApiKeyEntity } from '../auth/api-key.entity';
import { AlertEntity } from './alert.entity';

/** Where notifications go. The secret is sealed at rest (SecretCipher) and never shown after creation. */
@Entity({ name: 'webhooks' })
@Index('webhooks_created_at_id', ['createdAt', 'id'])
export class WebhookEntity {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'webhooks_pkey' })
  id!: string;

  @Column({ type: 'text', default: '' })
  name!: string;

  @Column({ type: 'text' })
  url!: string;

  /** The HMAC key, sealed with the webhook's id as authenticated data. */
  @Column({ type: 'bytea' })
  secret!: Buffer;

  @Column({ name: 'test_ids', type: 'uuid', array: true, default: [] })
  testIds!: string[];

  @Column({ type: 'text', array: true, default: [] })
  tags!: string[];

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  /** Never loaded: declared for the foreign key. */
  @ManyToOne(() => ApiKeyEntity, { nullable: true, onDelete: 'SET NULL' })
  @JoinColumn({ name: 'created_by', foreignKeyConstraintName: 'webhooks_created_by_fkey' })
  creator?: ApiKeyEntity;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}

/** What a notification says apart from the fields of each attempt (`id`, `timestamp`, `attempt`). */
export type NotificationPayload = Omit<WebhookNotification, 'id' | 'timestamp' | 'attempt'>;

/** One notification to one webhook: pending until delivered, or failed after the last attempt. */
@Entity({ name: 'webhook_deliveries' })
@Index('webhook_deliveries_due', ['nextAttemptAt'], { where: `state = 'pending'` })
@Index('webhook_deliveries_webhook_id_created_at', ['webhookId', 'createdAt', 'id'])
@Check('webhook_deliveries_event_check', `event IN ('alert.opened', 'alert.resolved', 'test')`)
@Check('webhook_deliveries_state_check', `state IN ('pending', 'delivered', 'failed')`)
export class WebhookDeliveryEntity {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'webhook_deliveries_pkey' })
  id!: string;

  @Column({ name: 'webhook_id', type: 'uuid' })
  webhookId!: string;

  /** Never loaded: declared for the foreign key (deleting a webhook deletes its deliveries). */
  @ManyToOne(() => WebhookEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'webhook_id', foreignKeyConstraintName: 'webhook_deliveries_webhook_id_fkey' })
  webhook?: WebhookEntity;

  @Column({ type: 'text' })
  event!: WebhookEvent;

  @Index('webhook_deliveries_alert_id')
  @Column({ name: 'alert_id', type: 'uuid', nullable: true })
  alertId!: string | null;

  /** Never loaded: declared for the foreign key. */
  @ManyToOne(() => AlertEntity, { nullable: true, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'alert_id', foreignKeyConstraintName: 'webhook_deliveries_alert_id_fkey' })
  alert?: AlertEntity;

  @Column({ name: 'test_id', type: 'uuid', nullable: true })
  testId!: string | null;

  @Column({ type: 'jsonb' })
  payload!: NotificationPayload;

  @Column({ type: 'text', default: 'pending' })
  state!: WebhookDeliveryState;

  /** Attempts started (claimed) so far. */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  /** When a pending delivery is due; while an attempt runs, when its claim lapses. */
  @Column({ name: 'next_attempt_at', type: 'timestamptz', precision: 3, default: () => 'now()' })
  nextAttemptAt!: Date;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'completed_at', type: 'timestamptz', precision: 3, nullable: true })
  completedAt!: Date | null;
}

/** One attempt to deliver a notification: what the receiver answered, or why nothing came back. */
@Entity({ name: 'webhook_delivery_attempts' })
export class WebhookDeliveryAttemptEntity {
  @PrimaryColumn({
    name: 'delivery_id',
    type: 'uuid',
    primaryKeyConstraintName: 'webhook_delivery_attempts_pkey',
  })
  deliveryId!: string;

  @PrimaryColumn({ type: 'integer', primaryKeyConstraintName: 'webhook_delivery_attempts_pkey' })
  attempt!: number;

  /** Never loaded: declared for the foreign key. */
  @ManyToOne(() => WebhookDeliveryEntity, { nullable: false, onDelete: 'CASCADE' })
  @JoinColumn({ name: 'delivery_id', foreignKeyConstraintName: 'webhook_delivery_attempts_delivery_id_fkey' })
  delivery?: WebhookDeliveryEntity;

  @Column({ name: 'started_at', type: 'timestamptz', precision: 3 })
  startedAt!: Date;

  @Column({ name: 'duration_ms', type: 'double precision' })
  durationMs!: number;

  @Column({ name: 'status_code', type: 'integer', nullable: true })
  statusCode!: number | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;
}
