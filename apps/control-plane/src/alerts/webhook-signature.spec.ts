import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DELIVERY_POLICY,
  retryDelayMs,
  verifyWebhookSignature,
  webhookSignature,
} from './webhook-signature';

describe(webhookSignature.name, () => {
  const body = '{"id":"d1","event":"test","timestamp":"2026-03-01T12:00:00.000Z"}';

  it('is sha256= and the hex HMAC-SHA256 of the raw body under the secret', () => {
    const expected = createHmac('sha256', 'a-secret-of-16+chars').update(body).digest('hex');
    expect(webhookSignature('a-secret-of-16+chars', body)).toBe(`sha256=${expected}`);
    expect(webhookSignature('a-secret-of-16+chars', Buffer.from(body))).toBe(`sha256=${expected}`);
  });

  it('verifies only the same bytes under the same secret', () => {
    const header = webhookSignature('a-secret-of-16+chars', body);
    expect(verifyWebhookSignature('a-secret-of-16+chars', body, header)).toBe(true);
    expect(verifyWebhookSignature('another-secret-16+', body, header)).toBe(false);
    expect(verifyWebhookSignature('a-secret-of-16+chars', body.replace('test', 'tesT'), header)).toBe(false);
    expect(verifyWebhookSignature('a-secret-of-16+chars', body, header.slice(0, -1))).toBe(false);
    expect(verifyWebhookSignature('a-secret-of-16+chars', body, undefined)).toBe(false);
  });
});

describe(retryDelayMs.name, () => {
  const policy = { ...DEFAULT_DELIVERY_POLICY, maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 5000 };

  it('doubles from the base after each failed attempt, up to the longest wait', () => {
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(attempt, policy))).toEqual([1000, 2000, 4000, 5000]);
  });

  it('stops after the last attempt', () => {
    expect(retryDelayMs(5, policy)).toBeNull();
    expect(retryDelayMs(6, policy)).toBeNull();
  });

  it('spreads the default policy over about 21 minutes', () => {
    const waits = Array.from({ length: DEFAULT_DELIVERY_POLICY.maxAttempts }, (_, i) =>
      retryDelayMs(i + 1, DEFAULT_DELIVERY_POLICY),
    );
    expect(waits).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, null]);
  });
});
