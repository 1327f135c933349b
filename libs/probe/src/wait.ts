/** Returned by {@link waitFor} when the time ran out first. */
export const TIMED_OUT = Symbol('timed out');

/** Milliseconds on the monotonic clock. Durations never come from the wall clock. */
export const now = (): number => performance.now();

/** Microsecond precision is what the clock honestly offers for a network phase. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * The deadline of one probe run. A single timer serves every wait that runs until the deadline
 * (connect, TLS, upgrade, replies): a timer per wait would cost more than the waits themselves.
 */
export class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private readonly subscribers = new Set<() => void>();

  constructor(readonly atMs: number) {}

  remaining(): number {
    return Math.max(0, this.atMs - now());
  }

  get expired(): boolean {
    return now() >= this.atMs;
  }

  /** Calls `onExpire` when the deadline passes, unless the returned function is called first. */
  subscribe(onExpire: () => void): () => void {
    this.subscribers.add(onExpire);
    this.timer ??= setTimeout(() => this.expire(), Math.ceil(this.remaining()));
    return () => {
      this.subscribers.delete(onExpire);
    };
  }

  /** Releases the timer; every run ends with this. */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.subscribers.clear();
  }

  private expire(): void {
    this.timer = undefined;
    for (const onExpire of [...this.subscribers]) onExpire();
  }
}

/** Waits for `event` on `emitter` within `limit`; an 'error' first rejects. */
export function waitForEvent(
  emitter: NodeJS.EventEmitter,
  event: string,
  limit: Deadline | number,
  onSettled?: () => void,
): Promise<true | typeof TIMED_OUT> {
  return waitFor<true>(limit, (resolve, reject) => {
    const onEvent = () => resolve(true);
    emitter.once(event, onEvent);
    emitter.once('error', reject);
    return () => {
      onSettled?.();
      emitter.off(event, onEvent);
      emitter.off('error', reject);
    };
  });
}

/**
 * Waits for one outcome of the listeners `register` installs, or until `limit`: the run's
 * deadline, or a number of milliseconds of its own. The cleanup `register` returns always
 * runs, so no listener or timer outlives the wait.
 */
export function waitFor<T>(
  limit: Deadline | number,
  register: (resolve: (value: T) => void, reject: (error: unknown) => void) => () => void,
): Promise<T | typeof TIMED_OUT> {
  if (limit instanceof Deadline ? limit.expired : limit <= 0) return Promise.resolve(TIMED_OUT);
  return new Promise((resolve, reject) => {
    const state: { settled: boolean; cleanup?: () => void } = { settled: false };
    const settle = (finish: () => void) => {
      if (state.settled) return;
      state.settled = true;
      stopTimer();
      state.cleanup?.();
      finish();
    };
    const onTimeout = () => settle(() => resolve(TIMED_OUT));
    let stopTimer: () => void;
    if (limit instanceof Deadline) {
      stopTimer = limit.subscribe(onTimeout);
    } else {
      // Whole milliseconds: Node keeps one timer list per distinct duration.
      const timer = setTimeout(onTimeout, Math.ceil(limit));
      stopTimer = () => clearTimeout(timer);
    }
    state.cleanup = register(
      (value) => settle(() => resolve(value)),
      (error) => settle(() => reject(error instanceof Error ? error : new Error(String(error)))),
    );
    // register may have settled synchronously, before its cleanup was known.
    if (state.settled) state.cleanup();
  });
}
