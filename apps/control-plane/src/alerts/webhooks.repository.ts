import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { WebhookDeliveryState, WebhookEvent } from '@wsmon/contracts';
import { In, type DataSource, type EntityManager } from 'typeorm';
import type { Cursor } from '../common/pagination';
import { isUuid } from '../common/validation';
import {
  WebhookDeliveryAttemptEntity,
  WebhookDeliveryEntity,
  WebhookEntity,
  type NotificationPayload,
} from './webhook.entity';

/** A delivery claimed for one attempt, with what sending it needs. */
export interface ClaimedDelivery {
  readonly id: string;
  readonly webhookId: string;
  readonly event: WebhookEvent;
  readonly payload: NotificationPayload;
  /** The number of this attempt, from 1. */
  readonly attempt: number;
  readonly url: string;
  readonly sealedSecret: Buffer;
}

/** How an attempt ended, and what becomes of the delivery. */
export interface AttemptOutcome {
  readonly startedAt: Date;
  readonly durationMs: number;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly state: WebhookDeliveryState;
  /** When the next attempt is due, for a delivery left pending. */
  readonly retryInMs: number;
}

/** Notifications of one alert event, for every webhook whose filter takes the test. */
export interface AlertNotification {
  readonly event: Extract<WebhookEvent, 'alert.opened' | 'alert.resolved'>;
  readonly alertId: string;
  readonly testId: string;
  readonly testTags: readonly string[];
  readonly payload: NotificationPayload;
}

@Injectable()
export class WebhooksRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  save(webhook: WebhookEntity): Promise<WebhookEntity> {
    return this.dataSource.manager.save(WebhookEntity, webhook);
  }

  find(id: string): Promise<WebhookEntity | null> {
    return isUuid(id) ? this.dataSource.manager.findOneBy(WebhookEntity, { id }) : Promise.resolve(null);
  }

  list(limit: number, after: Cursor | undefined): Promise<WebhookEntity[]> {
    const query = this.dataSource.manager
      .createQueryBuilder(WebhookEntity, 'w')
      .orderBy('w.created_at')
      .addOrderBy('w.id')
      .limit(limit);
    if (after) query.where('(w.created_at, w.id) > (:createdAt, :id)', after);
    return query.getMany();
  }

  async delete(id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const result = await this.dataSource.manager.delete(WebhookEntity, { id });
    return (result.affected ?? 0) > 0;
  }

  /** Which of these test ids exist. */
  async existingTestIds(ids: readonly string[]): Promise<Set<string>> {
    const valid = ids.filter(isUuid);
    if (!valid.length) return new Set();
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT id FROM tests WHERE id = ANY($1::uuid[])`,
      [valid],
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Queues the notification of an alert event to every webhook that takes the test: one without
   * filters, one naming the test, or one sharing a tag with it. In the caller's transaction, so that
   * the alert and its notifications commit together. Returns how many were queued.
   */
  async enqueueAlert(manager: EntityManager, n: AlertNotification): Promise<number> {
    const rows = await manager.query<{ id: string }[]>(
      `INSERT INTO webhook_deliveries (id, webhook_id, event, alert_id, test_id, payload)
       SELECT gen_random_uuid(), w.id, $1, $2, $3, $4::jsonb FROM webhooks w
        WHERE (cardinality(w.test_ids) = 0 AND cardinality(w.tags) = 0)
           OR $3::uuid = ANY(w.test_ids) OR w.tags && $5::text[]
       RETURNING id`,
      [n.event, n.alertId, n.testId, JSON.stringify(n.payload), n.testTags],
    );
    return rows.length;
  }

  /**
   * Queues a delivery already claimed for its first attempt by the caller (a test notification, sent
   * at once): should the caller die, the claim lapses after `leaseMs` and any replica retries it.
   */
  async insertClaimed(
    delivery: { id: string; webhookId: string; event: WebhookEvent; payload: NotificationPayload },
    leaseMs: number,
  ): Promise<ClaimedDelivery | null> {
    const [row] = await this.dataSource.query<ClaimedRow[]>(
      `WITH inserted AS (
         INSERT INTO webhook_deliveries (id, webhook_id, event, payload, attempts, next_attempt_at)
         VALUES ($1, $2, $3, $4::jsonb, 1, now() + make_interval(secs => $5 / 1000.0))
         RETURNING id, webhook_id, event, payload, attempts)
       SELECT i.*, w.url, w.secret FROM inserted i JOIN webhooks w ON w.id = i.webhook_id`,
      [delivery.id, delivery.webhookId, delivery.event, JSON.stringify(delivery.payload), leaseMs],
    );
    return row ? claimed(row) : null;
  }

  /**
   * Claims up to `limit` due deliveries for one attempt each: SKIP LOCKED lets replicas claim side by
   * side without waiting on or taking each other's; the claim moves `next_attempt_at` `leaseMs` ahead,
   * so a delivery whose sender died is due again then.
   */
  async claimDue(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    if (limit <= 0) return [];
    const [rows] = await this.dataSource.query<[ClaimedRow[], number]>(
      `WITH due AS (
         SELECT id FROM webhook_deliveries
          WHERE state = 'pending' AND next_attempt_at <= now()
          ORDER BY next_attempt_at
          LIMIT $1
            FOR UPDATE SKIP LOCKED)
       UPDATE webhook_deliveries d
          SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2 / 1000.0)
         FROM due, webhooks w
        WHERE d.id = due.id AND w.id = d.webhook_id
       RETURNING d.id, d.webhook_id, d.event, d.payload, d.attempts, w.url, w.secret`,
      [limit, leaseMs],
    );
    return rows.map(claimed);
  }

  /**
   * Records an attempt and moves the delivery on, unless another sender claimed it since (its claim
   * lapsed): then only the attempt is recorded.
   */
  async recordAttempt(delivery: ClaimedDelivery, outcome: AttemptOutcome): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO webhook_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT FROM webhook_deliveries WHERE id = $1)
         ON CONFLICT (delivery_id, attempt) DO NOTHING`,
        [
          delivery.id,
          delivery.attempt,
          outcome.startedAt,
          outcome.durationMs,
          outcome.statusCode,
          outcome.error,
        ],
      );
      await manager.query(
        `UPDATE webhook_deliveries
            SET state = $3,
                next_attempt_at = now() + make_interval(secs => $4 / 1000.0),
                completed_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
          WHERE id = $1 AND attempts = $2 AND state = 'pending'`,
        [delivery.id, delivery.attempt, outcome.state, outcome.retryInMs],
      );
    });
  }

  /** A webhook's deliveries newest first, after the cursor. */
  listDeliveries(
    webhookId: string,
    state: WebhookDeliveryState | undefined,
    limit: number,
    after: Cursor | undefined,
  ): Promise<WebhookDeliveryEntity[]> {
    const query = this.dataSource.manager
      .createQueryBuilder(WebhookDeliveryEntity, 'd')
      .where('d.webhook_id = :webhookId', { webhookId })
      .orderBy('d.created_at', 'DESC')
      .addOrderBy('d.id', 'DESC')
      .limit(limit);
    if (state !== undefined) query.andWhere('d.state = :state', { state });
    if (after) query.andWhere('(d.created_at, d.id) < (:createdAt, :id)', after);
    return query.getMany();
  }

  findDelivery(id: string): Promise<WebhookDeliveryEntity | null> {
    return this.dataSource.manager.findOneBy(WebhookDeliveryEntity, { id });
  }

  /** The attempts of these deliveries, in order, by delivery id. */
  async attempts(deliveryIds: readonly string[]): Promise<Map<string, WebhookDeliveryAttemptEntity[]>> {
    const found = new Map<string, WebhookDeliveryAttemptEntity[]>();
    if (!deliveryIds.length) return found;
    const rows = await this.dataSource.manager.find(WebhookDeliveryAttemptEntity, {
      where: { deliveryId: In([...deliveryIds]) },
      order: { deliveryId: 'ASC', attempt: 'ASC' },
    });
    for (const row of rows) found.set(row.deliveryId, [...(found.get(row.deliveryId) ?? []), row]);
    return found;
  }

  /** Deletes finished deliveries (and their attempts) completed more than `olderThanMs` ago. */
  async purgeFinished(olderThanMs: number): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM webhook_deliveries
        WHERE state <> 'pending' AND completed_at < now() - make_interval(secs => $1 / 1000.0)`,
      [olderThanMs],
    );
  }
}

interface ClaimedRow {
  id: string;
  webhook_id: string;
  event: WebhookEvent;
  payload: NotificationPayload;
  attempts: number;
  url: string;
  secret: Buffer;
}

const claimed = (row: ClaimedRow): ClaimedDelivery => ({
  id: row.id,
  webhookId: row.webhook_id,
  event: row.event,
  payload: row.payload,
  attempt: row.attempts,
  url: row.url,
  sealedSecret: row.secret,
});
