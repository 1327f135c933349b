import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, classifyStreamError, DEFAULT_BACKOFF, ReconnectAttempts } from './backoff';

describe(classifyStreamError.name, () => {
  it.each([
    [status.UNAUTHENTICATED, 'fatal'],
    [status.PERMISSION_DENIED, 'fatal'],
    [status.UNAVAILABLE, 'transient'],
    [status.ABORTED, 'transient'],
    [status.INTERNAL, 'transient'],
    [status.DEADLINE_EXCEEDED, 'transient'],
    [status.FAILED_PRECONDITION, 'transient'],
  ] as const)('status %i is %s', (code, expected) => {
    expect(classifyStreamError(code)).toBe(expected);
  });
});

describe(backoffDelayMs.name, () => {
  it('doubles the cap from 500 ms up to a minute', () => {
    const caps = [0, 1, 2, 3, 6, 7, 20].map((attempt) => backoffDelayMs(attempt, 'transient', () => 1));
    expect(caps).toEqual([500, 1000, 2000, 4000, 32_000, 60_000, 60_000]);
  });

  it('draws uniformly below the cap (full jitter)', () => {
    expect(backoffDelayMs(3, 'transient', () => 0)).toBe(0);
    expect(backoffDelayMs(3, 'transient', () => 0.25)).toBe(1000);
  });

  it('waits the fatal delay after a refused token, whatever the attempt', () => {
    expect(backoffDelayMs(0, 'fatal', () => 0)).toBe(DEFAULT_BACKOFF.fatalMs);
    expect(backoffDelayMs(50, 'fatal', () => 1)).toBe(DEFAULT_BACKOFF.fatalMs);
  });
});

describe(ReconnectAttempts.name, () => {
  it('counts up while sessions die young and resets only after a healthy one', () => {
    const attempts = new ReconnectAttempts(30_000);
    expect([attempts.next(10), attempts.next(2_000), attempts.next(29_999)]).toEqual([0, 1, 2]);
    expect(attempts.next(30_000)).toBe(0);
    expect(attempts.next(5)).toBe(1);
  });
});
