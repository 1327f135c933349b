import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `X-Wsmon-Signature` value of a body: `sha256=` and the hex HMAC-SHA256 of the raw body bytes under
 * the webhook's secret. The body holds the attempt's `timestamp` and the delivery `id`, so the signature
 * covers both: a receiver that refuses bodies older than a few minutes and ids it has seen is safe from
 * replays.
 */
export function webhookSignature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Whether `header` is the signature of `body` under `secret`, compared in constant time. */
export function verifyWebhookSignature(
  secret: string,
  body: string | Buffer,
  header: string | undefined,
): boolean {
  if (header === undefined) return false;
  const expected = Buffer.from(webhookSignature(secret, body));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** How deliveries are retried: attempts, backoff, and how long one attempt may take. */
export interface DeliveryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** The wait after the first failed attempt; it doubles after each further one. */
  readonly baseDelayMs: number;
  /** The longest wait between two attempts. */
  readonly maxDelayMs: number;
  /** One attempt's deadline: connect, send, and the response head. */
  readonly timeoutMs: number;
  /** A claimed delivery is due again after this long if its sender never reports (it died). */
  readonly leaseMs: number;
}

/** 8 attempts over about 21 minutes: 10 s, 20 s, 40 s, 80 s, 160 s, 320 s, 640 s apart. */
export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = {
  maxAttempts: 8,
  baseDelayMs: 10_000,
  maxDelayMs: 30 * 60_000,
  timeoutMs: 10_000,
  leaseMs: 60_000,
};

/**
 * The wait after failed attempt number `attempt` (from 1) before the next, or null when it was the
 * last: exponential, `baseDelayMs × 2^(attempt − 1)`, at most `maxDelayMs`.
 */
export function retryDelayMs(attempt: number, policy: DeliveryPolicy): number | null {
  if (attempt >= policy.maxAttempts) return null;
  return Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
}
