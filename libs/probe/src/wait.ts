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
    const state: { settled: boolean; cleanup?: () => void } = { settled: false };
    const settle = (finish: () => void) => {
      if (state.settled) return;
      state.settled = true;
      clearTimeout(timer);
      state.cleanup?.();
      finish();
    };
    const timer = setTimeout(() => settle(() => resolve(TIMED_OUT)), Math.max(0, timeoutMs));
    state.cleanup = register(
      (value) => settle(() => resolve(value)),
      (error) => settle(() => reject(error instanceof Error ? error : new Error(String(error)))),
    );
    // register may have settled synchronously, before its cleanup was known.
    if (state.settled) state.cleanup();
  });
}

/** Milliseconds on the monotonic clock. Durations never come from the wall clock. */
export const now = (): number => performance.now();

/** Microsecond precision is what the clock honestly offers for a network phase. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;
