/** Returned by {@link waitFor} when the time ran out first. */
export const TIMED_OUT = Symbol('timed out');

/**
 * Waits for one outcome of listeners that `register` installs, or for `timeoutMs`. The cleanup
 * that `register` returns always runs, so no listener or timer outlives the wait.
 */
export function waitFor<T>(
  timeoutMs: number,
  register: (resolve: (value: T) => void, reject: (error: unknown) => void) => () => void,
): Promise<T | typeof TIMED_OUT> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let cleanup: (() => void) | undefined;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cleanup?.();
      finish();
    };
    const timer = setTimeout(() => settle(() => resolve(TIMED_OUT)), Math.max(0, timeoutMs));
    cleanup = register(
      (value) => settle(() => resolve(value)),
      (error) => settle(() => reject(error)),
    );
    // register may have settled synchronously, before cleanup was known.
    if (settled) cleanup();
  });
}

/** Milliseconds on the monotonic clock. Durations never come from the wall clock. */
export const now = (): number => performance.now();

/** Microsecond precision is what the clock honestly offers for a network phase. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;
