/**
 * The time source of the scheduler, injectable so that tests run on a fake clock without waiting.
 * `now()` is wall-clock epoch milliseconds (slots are wall-clock times, identical on every agent);
 * timers measure durations, so a wall-clock step shows up as timers firing early or late, which the
 * scheduler tolerates (see `TestScheduler`).
 */
export interface Clock {
  now(): number;
  /** Calls `callback` once after `delayMs`; the returned function cancels it. */
  setTimer(callback: () => void, delayMs: number): () => void;
}

/** `Date.now()` and `setTimeout`, looked up at each call so that fake timers in tests replace them. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (callback, delayMs) => {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
};

/** Resolves after `delayMs`, or at once when `signal` aborts (never rejects). */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.setTimer(done, delayMs);
    signal?.addEventListener('abort', done, { once: true });
  });
}
