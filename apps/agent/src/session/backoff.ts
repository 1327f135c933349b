import { status } from '@grpc/grpc-js';

/** How the session treats a stream that ended with a gRPC status. */
export type StreamErrorClass = 'fatal' | 'transient';

/**
 * A bad or revoked token will not fix itself by retrying fast: say so clearly and retry slowly.
 * Everything else (the control plane restarting, a network blip, a drain) is transient.
 */
export function classifyStreamError(code: status): StreamErrorClass {
  return code === status.UNAUTHENTICATED || code === status.PERMISSION_DENIED ? 'fatal' : 'transient';
}

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** Delay after a fatal error: slow enough not to hammer, quick enough to notice a fixed token. */
  readonly fatalMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 500,
  maxMs: 60_000,
  multiplier: 2,
  fatalMs: 300_000,
};

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry): exponential with "full
 * jitter" (a uniform draw in [0, cap]), so a control-plane restart does not bring every agent
 * back in the same millisecond. `random` is injectable; the result is a pure function of it.
 */
export function backoffDelayMs(
  attempt: number,
  errorClass: StreamErrorClass,
  random: () => number = Math.random,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  if (errorClass === 'fatal') return policy.fatalMs;
  const cap = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** Math.max(0, attempt));
  return Math.round(random() * cap);
}

/**
 * Attempt counting: it resets only after a healthy session (one that stayed up for a while), so
 * a control plane that accepts and then drops every stream still backs off.
 */
export class ReconnectAttempts {
  private attempt = 0;

  constructor(private readonly healthySessionMs = 30_000) {}

  /** The attempt number for the next delay, given how long the session that just ended lasted. */
  next(sessionLastedMs: number): number {
    if (sessionLastedMs >= this.healthySessionMs) this.attempt = 0;
    return this.attempt++;
  }
}
