import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runWithRetry } from './run-with-retry';

interface Outcome {
  readonly success: boolean;
  readonly attempt: number;
}

/** A run that fails its first `failures` attempts and records when each attempt started. */
function flaky(failures: number) {
  const startedAt: number[] = [];
  const runOnce = vi.fn((attempt: number) => {
    startedAt.push(Date.now());
    return Promise.resolve<Outcome>({ success: attempt > failures, attempt });
  });
  return { runOnce, startedAt };
}

const never = () => new AbortController().signal;

describe(runWithRetry.name, () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a success on the first attempt is the outcome: no retry', async () => {
    const { runOnce } = flaky(0);
    await expect(runWithRetry(runOnce, { attempts: 3, delay_ms: 1000 }, never())).resolves.toEqual({
      result: { success: true, attempt: 1 },
      attempts: 1,
    });
    expect(runOnce).toHaveBeenCalledTimes(1);
  });

  it('retries a failure delay_ms apart and stops at the first success', async () => {
    const { runOnce, startedAt } = flaky(2);
    const outcome = runWithRetry(runOnce, { attempts: 5, delay_ms: 1000 }, never());
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(outcome).resolves.toEqual({ result: { success: true, attempt: 3 }, attempts: 3 });
    expect(startedAt).toEqual([0, 1000, 2000]);
  });

  it('records the last failure after 1 + attempts tries', async () => {
    const { runOnce } = flaky(10);
    const outcome = runWithRetry(runOnce, { attempts: 2, delay_ms: 500 }, never());
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(outcome).resolves.toEqual({ result: { success: false, attempt: 3 }, attempts: 3 });
  });

  it('with attempts 0 runs once', async () => {
    const { runOnce } = flaky(10);
    await expect(runWithRetry(runOnce, { attempts: 0, delay_ms: 500 }, never())).resolves.toMatchObject({
      attempts: 1,
    });
  });

  it('with delay_ms 0 retries at once', async () => {
    const { runOnce, startedAt } = flaky(10);
    await expect(runWithRetry(runOnce, { attempts: 2, delay_ms: 0 }, never())).resolves.toMatchObject({
      attempts: 3,
    });
    expect(startedAt).toEqual([0, 0, 0]);
  });

  it('an abort during the delay ends the wait at once and returns the last result', async () => {
    const { runOnce } = flaky(10);
    const controller = new AbortController();
    const outcome = runWithRetry(runOnce, { attempts: 5, delay_ms: 60_000 }, controller.signal);
    await vi.advanceTimersByTimeAsync(1000);
    controller.abort();
    await expect(outcome).resolves.toEqual({ result: { success: false, attempt: 1 }, attempts: 1 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an abort during an attempt starts no further attempt', async () => {
    const controller = new AbortController();
    const runOnce = vi.fn((attempt: number) => {
      controller.abort();
      return Promise.resolve({ success: false, attempt });
    });
    await expect(
      runWithRetry(runOnce, { attempts: 5, delay_ms: 10 }, controller.signal),
    ).resolves.toMatchObject({
      attempts: 1,
    });
    expect(runOnce).toHaveBeenCalledTimes(1);
  });

  it('passes the signal to each attempt', async () => {
    const controller = new AbortController();
    const runOnce = vi.fn((attempt: number, signal: AbortSignal) =>
      Promise.resolve({ success: signal === controller.signal, attempt }),
    );
    await expect(
      runWithRetry(runOnce, { attempts: 1, delay_ms: 0 }, controller.signal),
    ).resolves.toMatchObject({
      result: { success: true },
    });
  });

  it('lets an exception through without retrying', async () => {
    const runOnce = vi.fn(() => Promise.reject<Outcome>(new Error('bug')));
    await expect(runWithRetry(runOnce, { attempts: 3, delay_ms: 0 }, never())).rejects.toThrow('bug');
    expect(runOnce).toHaveBeenCalledTimes(1);
  });
});
