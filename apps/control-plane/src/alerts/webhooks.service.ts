import { randomBytes, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  listQuerySchema,
  webhookDeliveryListQuerySchema,
  webhookInputSchema,
  type ConfigFieldError,
  type WebhookDeliveryResponse,
  type WebhookResponse,
} from '@wsmon/contracts';
import { InvalidArgumentError, NotFoundError } from '../common/errors';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { validated } from '../common/validation';
import { SecretCipher } from '../secrets/secret-cipher';
import { secretName, WebhookDispatcher } from './webhook-dispatcher.service';
import {
  WebhookEntity,
  type WebhookDeliveryAttemptEntity,
  type WebhookDeliveryEntity,
} from './webhook.entity';
import { WebhooksRepository } from './webhooks.repository';

const webhookResponse = (w: WebhookEntity): WebhookResponse => ({
  id: w.id,
  name: w.name,
  url: w.url,
  tests: w.testIds,
  tags: w.tags,
  created_at: w.createdAt.toISOString(),
});

function deliveryResponse(
  d: WebhookDeliveryEntity,
  attempts: readonly WebhookDeliveryAttemptEntity[],
): WebhookDeliveryResponse {
  return {
    id: d.id,
    webhook_id: d.webhookId,
    event: d.event,
    alert_id: d.alertId,
    test_id: d.testId,
    state: d.state,
    created_at: d.createdAt.toISOString(),
    next_attempt_at: d.state === 'pending' ? d.nextAttemptAt.toISOString() : null,
    completed_at: d.completedAt?.toISOString() ?? null,
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      started_at: a.startedAt.toISOString(),
      duration_ms: a.durationMs,
      status_code: a.statusCode,
      error: a.error,
    })),
  };
}

/** Webhooks: where alert notifications go, and every delivery to them. REST calls this. */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly repository: WebhooksRepository,
    private readonly cipher: SecretCipher,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  /** Creates a webhook; the response holds its secret, this once. */
  async create(body: unknown, createdBy: string | null): Promise<WebhookResponse> {
    const input = validated(webhookInputSchema, body);
    const existing = await this.repository.existingTestIds(input.tests);
    const errors: ConfigFieldError[] = input.tests.flatMap((id, i) =>
      existing.has(id)
        ? []
        : [
            {
              path: `tests[${i}]`,
              rule: 'exists',
              message: `tests[${i}]: no test has the id ${id}`,
              value: id,
            },
          ],
    );
    if (errors.length) throw new InvalidArgumentError(errors);
    const id = randomUUID();
    const secret = input.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    const saved = await this.repository.save(
      Object.assign(new WebhookEntity(), {
        id,
        name: input.name,
        url: input.url,
        secret: this.cipher.seal(secretName(id), secret),
        testIds: input.tests,
        tags: input.tags,
        createdBy,
      }),
    );
    return { ...webhookResponse(saved), secret };
  }

  async list(query: unknown): Promise<Page<WebhookResponse>> {
    const q = validated(listQuerySchema, query);
    const rows = await this.repository.list(q.page_size + 1, decodeCursor(q.page_token));
    return toPage(rows, q.page_size, webhookResponse);
  }

  async get(id: string): Promise<WebhookResponse> {
    return webhookResponse(await this.find(id));
  }

  /** Deletes a webhook with its deliveries: pending ones are not sent. */
  async delete(id: string): Promise<void> {
    if (!(await this.repository.delete(id))) throw new NotFoundError('webhook', id);
  }

  /**
   * Sends a test notification now and answers with its delivery after the first attempt; a failed
   * attempt is retried like any other delivery.
   */
  async sendTest(id: string): Promise<WebhookDeliveryResponse> {
    const webhook = await this.find(id);
    const claimed = await this.repository.insertClaimed(
      {
        id: randomUUID(),
        webhookId: webhook.id,
        event: 'test',
        payload: {
          event: 'test',
          test: null,
          alert: null,
          locations: [],
          message: `A test notification from wsmon to the webhook ${JSON.stringify(webhook.name || webhook.id)}`,
        },
      },
      this.dispatcher.policy.leaseMs,
    );
    if (!claimed) throw new NotFoundError('webhook', id);
    await this.dispatcher.attempt(claimed);
    const delivery = await this.repository.findDelivery(claimed.id);
    if (!delivery) throw new NotFoundError('webhook', id);
    const attempts = await this.repository.attempts([delivery.id]);
    return deliveryResponse(delivery, attempts.get(delivery.id) ?? []);
  }

  /** A webhook's deliveries, newest first, each with its attempts. */
  async deliveries(id: string, query: unknown): Promise<Page<WebhookDeliveryResponse>> {
    const q = validated(webhookDeliveryListQuerySchema, query);
    await this.find(id);
    const rows = await this.repository.listDeliveries(
      id,
      q.state,
      q.page_size + 1,
      decodeCursor(q.page_token),
    );
    const attempts = await this.repository.attempts(rows.slice(0, q.page_size).map((d) => d.id));
    return toPage(rows, q.page_size, (d) => deliveryResponse(d, attempts.get(d.id) ?? []));
  }

  private async find(id: string): Promise<WebhookEntity> {
    const webhook = await this.repository.find(id);
    if (!webhook) throw new NotFoundError('webhook', id);
    return webhook;
  }
}
