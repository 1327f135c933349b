/**
 * What the agent's benchmarks share: the goals, and how they count slots and report delays.
 * `src/scheduler/scheduler.bench.ts` measures the scheduler alone, `agent.bench.ts` the whole agent
 * as a process; both judge against the same goals with the same arithmetic.
 */
import type { Schedule } from '@wsmon/contracts';
import { SlotPlan, createSlotSequence, type SlotTimes } from '../src/scheduler';

/** Resident memory of an agent holding 10,000 tests, at most. */
export const GOAL_RSS_MB = 150;
/** The 99th percentile of the delay between a run's time and its start, at most. */
export const GOAL_P99_MS = 50;

export const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

/** The value at fraction `p` of an ascending array; NaN when empty. */
export const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

/**
 * Calls `each` for every run of every test whose run time (slot plus the test's offset, see
 * `slot-plan.ts`) falls in [fromMs, toMs], test by test in slot order; returns how many. These are
 * the runs an agent that holds the tests from before `fromMs` must start exactly once.
 */
export function forEachRun(
  testIds: readonly string[],
  schedule: Schedule,
  fromMs: number,
  toMs: number,
  each: (testIndex: number, run: SlotTimes) => void = () => undefined,
): number {
  const sequence = createSlotSequence(schedule);
  let count = 0;
  testIds.forEach((testId, testIndex) => {
    const plan = new SlotPlan(testId, sequence);
    for (
      let run = plan.firstRun(fromMs);
      run !== null && run.runAtMs <= toMs;
      run = plan.nextSlot(run.slotMs)
    ) {
      each(testIndex, run);
      count++;
    }
  });
  return count;
}

/** `p50 … ms, p99 … ms, max … ms (goal p99 < 50)` of ascending delays in milliseconds. */
export function delaySummary(sorted: Float64Array): string {
  const format = (ms: number) => (Number.isInteger(ms) || Number.isNaN(ms) ? String(ms) : ms.toFixed(1));
  return (
    `p50 ${format(percentile(sorted, 0.5))} ms, p99 ${format(percentile(sorted, 0.99))} ms, ` +
    `max ${format(sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!)} ms (goal p99 < ${GOAL_P99_MS})`
  );
}

/** The closing line of a report: each entry names a goal that was missed, or is null when it was met. */
export function goalsLine(missed: readonly (string | null)[]): string {
  const names = missed.filter((goal): goal is string => goal !== null);
  return names.length === 0 ? 'all goals met' : `goals missed: ${names.join(', ')}`;
}
