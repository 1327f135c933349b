import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  type WebhookNotification,
} from '@wsmon/contracts';
import { SecretCipher } from '../secrets/secret-cipher';
import { retryDelayMs, webhookSignature, type DeliveryPolicy } from './webhook-signature';
import { WebhooksRepository, type AttemptOutcome, type ClaimedDelivery } from './webhooks.repository';

/** The delivery policy in force (DEFAULT_DELIVERY_POLICY); a spec may provide another. */
export const DELIVERY_POLICY = Symbol('DELIVERY_POLICY');

/** How often each replica looks for due deliveries (a new one is also sent at once by its replica). */
const POLL_MS = 1000;
/** Attempts in flight per replica. */
const CONCURRENCY = 8;
/** Finished deliveries are kept this long, then deleted with their attempts. */
const KEEP_FINISHED_MS = 30 * 86_400_000;
const PURGE_EVERY_MS = 3_600_000;
const MAX_ERROR_CHARS = 500;

/** The name under which a webhook's secret is sealed: the webhook's id is the authenticated data. */
export const secretName = (webhookId: string): string => `webhook:${webhookId}`;

/**
 * Sends notifications to webhooks, on every replica: pending deliveries are rows, claimed one attempt
 * at a time (SKIP LOCKED), so they survive a restart, are sent by one replica at a time, and each
 * attempt is recorded with the receiver's status, the error and the duration. A failed attempt is
 * retried with exponential backoff up to the policy's attempts; a 2xx answer delivers.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('webhooks');
  private timer: NodeJS.Timeout | undefined;
  private lastPurge = 0;
  private polling: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly repository: WebhooksRepository,
    private readonly cipher: SecretCipher,
    @Inject(DELIVERY_POLICY) readonly policy: DeliveryPolicy,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.kick(), POLL_MS);
    this.timer.unref();
    this.kick();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.polling;
    // Attempts under way end within their timeout; one cut short is claimed again after its lease.
    await Promise.allSettled([...this.inFlight]);
  }

  /** Looks for due deliveries now (after an alert was queued); a look already under way suffices. */
  kick(): void {
    if (this.stopped || this.polling) return;
    this.polling = this.poll()
      .then(() => undefined)
      .catch((error: unknown) => this.logger.warn(`cannot claim deliveries: ${String(error)}`))
      .finally(() => (this.polling = undefined));
  }

  /**
   * Claims what is due now and sends it; resolves once every attempt under way on this replica (these,
   * and those a kick started) is recorded. Returns how many attempts this call started.
   */
  async sendDue(): Promise<number> {
    await this.polling;
    const attempts = await this.poll();
    await Promise.allSettled([...this.inFlight]);
    return attempts.length;
  }

  /** Claims and starts sending what is due, up to the concurrency; resolves once claimed (not once sent). */
  private async poll(): Promise<Promise<void>[]> {
    const claimed = await this.repository.claimDue(CONCURRENCY - this.inFlight.size, this.policy.leaseMs);
    const attempts = claimed.map((delivery) => this.track(this.attempt(delivery)));
    if (Date.now() - this.lastPurge > PURGE_EVERY_MS) {
      this.lastPurge = Date.now();
      await this.repository.purgeFinished(KEEP_FINISHED_MS);
    }
    return attempts;
  }

  private track(sending: Promise<void>): Promise<void> {
    this.inFlight.add(sending);
    return sending.finally(() => this.inFlight.delete(sending));
  }

  /** Makes one attempt at a claimed delivery and records it; never throws. */
  async attempt(delivery: ClaimedDelivery): Promise<void> {
    const startedAt = new Date();
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const secret = this.cipher.open(secretName(delivery.webhookId), delivery.sealedSecret);
      const notification: WebhookNotification = {
        id: delivery.id,
        event: delivery.event,
        timestamp: startedAt.toISOString(),
        attempt: delivery.attempt,
        test: delivery.payload.test,
        alert: delivery.payload.alert,
        locations: delivery.payload.locations,
        message: delivery.payload.message,
      };
      const body = JSON.stringify(notification);
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'wsmon-webhook/1',
          [WEBHOOK_EVENT_HEADER]: delivery.event,
          [WEBHOOK_DELIVERY_HEADER]: delivery.id,
          [WEBHOOK_TIMESTAMP_HEADER]: String(Math.floor(startedAt.getTime() / 1000)),
          [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(secret, body),
        },
        body,
        // A redirect is the receiver's answer, not a place to send the signed body to.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.policy.timeoutMs),
      });
      statusCode = response.status;
      await response.body?.cancel().catch(() => undefined);
      if (statusCode < 200 || statusCode > 299) error = `the receiver answered HTTP ${statusCode}`;
    } catch (e) {
      error = describeError(e, this.policy.timeoutMs);
    }
    const durationMs = performance.now() - started;
    const retryInMs = error === null ? 0 : retryDelayMs(delivery.attempt, this.policy);
    const outcome: AttemptOutcome = {
      startedAt,
      durationMs,
      statusCode,
      error,
      state: error === null ? 'delivered' : retryInMs === null ? 'failed' : 'pending',
      retryInMs: retryInMs ?? 0,
    };
    try {
      await this.repository.recordAttempt(delivery, outcome);
    } catch (e) {
      // The claim lapses and the delivery is attempted again: at least once, never lost.
      this.logger.warn(`cannot record attempt ${delivery.attempt} of delivery ${delivery.id}: ${String(e)}`);
    }
    if (outcome.state === 'failed') {
      this.logger.warn(
        `delivery ${delivery.id} to ${delivery.url} failed after ${delivery.attempt} attempts`,
      );
    }
  }
}

/** Why an attempt got no response: a timeout, or the network error's code (ECONNREFUSED…). */
function describeError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no response within ${timeoutMs} ms`;
  }
  const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
  const text = cause?.code
    ? `${cause.code}${cause.message ? `: ${cause.message}` : ''}`
    : error instanceof Error
      ? error.message
      : String(error);
  return text.slice(0, MAX_ERROR_CHARS);
}
