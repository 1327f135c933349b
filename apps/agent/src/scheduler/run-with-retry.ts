import type { RetryPolicy } from '@wsmon/contracts';
import { sleep, systemClock, type Clock } from './clock';

/** The outcome of the last attempt, and how many attempts were made (1 + retries). */
export interface RetryOutcome<T> {
  readonly result: T;
  readonly attempts: number;
}

/**
 * Runs `runOnce` and, while it fails, up to `policy.attempts` more times, `policy.delay_ms` apart: a
 * blip is retried, an outage is recorded after the last attempt. A success ends it at once. Once
 * `signal` aborts (the run's deadline, or shutdown) no further attempt starts and a pending delay
 * ends at once: the last result is returned. The first attempt always runs; `runOnce` gets the
 * signal to abort its own work. An exception from `runOnce` is not a failed probe (the probe engine
 * reports failures as results): it propagates without retrying.
 */
export async function runWithRetry<T extends { readonly success: boolean }>(
  runOnce: (attempt: number, signal: AbortSignal) => Promise<T>,
  policy: RetryPolicy,
  signal: AbortSignal,
  clock: Clock = systemClock,
): Promise<RetryOutcome<T>> {
  const maxAttempts = 1 + Math.max(0, policy.attempts);
  for (let attempt = 1; ; attempt++) {
    const result = await runOnce(attempt, signal);
    if (result.success || attempt >= maxAttempts || signal.aborted) return { result, attempts: attempt };
    if (policy.delay_ms > 0) await sleep(clock, policy.delay_ms, signal);
    if (signal.aborted) return { result, attempts: attempt };
  }
}
