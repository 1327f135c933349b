import { createHash } from 'node:crypto';
import { createTask, parse } from 'node-cron';
import type { Schedule } from '@wsmon/contracts';

/**
 * When a test runs.
 *
 * A *slot* is the nominal time of a schedule: identical on every agent and every restart, so the
 * control plane keeps one result per test, location and slot. A test *runs* at its slot plus a stable
 * offset: `floor(phase × spread)`, where `phase` in [0, 1) comes from a hash of the test id and
 * `spread` is the window the schedule allows before its next slot. A thousand tests on one schedule
 * therefore start spread evenly over that window, always at the same point of it, and a run always
 * starts before the next slot of its test.
 *
 * - `interval_s`: slots are the multiples of the interval since the Unix epoch; the spread is the
 *   whole interval.
 * - `cron`: slots are the cron's fire times in UTC (UTC, not the agent's zone, so agents in different
 *   zones agree on the slots), computed with node-cron's own parser and matcher. The spread of a slot
 *   is the gap to the cron's next fire time, bounded by `maxCronSpreadMs` (5 minutes by default).
 *   The gap alone suits regular crons (`* * * * *` spreads over the minute, `*\/10 * * * * *` over
 *   ten seconds) and keeps each run before the next slot even when the gaps vary (`0,10 * * * * *`
 *   spreads over 10 s after :00 and 50 s after :10). The bound is for crons that name a time of day:
 *   `0 0 9 * * MON-FRI` has gaps of 24 and 72 hours, and its Friday run must not drift into the
 *   weekend; with the bound every such test runs between 09:00 and 09:05.
 */

/** A slot and the moment its test runs for it, both in epoch milliseconds. */
export interface SlotTimes {
  readonly slotMs: number;
  readonly runAtMs: number;
}

/** The slots of one schedule, shared by every test on that schedule. */
export interface SlotSequence {
  /** Equal for equal schedules (`scheduleKey`). */
  readonly key: string;
  /** The first slot strictly after `afterMs`; null when the schedule never fires again. */
  nextAfter(afterMs: number): number | null;
  /** The window the run of `slotMs` may be offset within: at most the gap to the next slot. */
  spreadMs(slotMs: number): number;
  /** The largest spread of any slot: a slot at or before `now − maxSpreadMs` has run time before now. */
  readonly maxSpreadMs: number;
}

export interface SlotSequenceOptions {
  /** The largest offset of a cron run after its slot. Default 5 minutes. */
  readonly maxCronSpreadMs?: number;
}

export const DEFAULT_MAX_CRON_SPREAD_MS = 5 * 60_000;

const SECOND_MS = 1000;
const DAY_MS = 86_400_000;
/** How far ahead a cron's next fire time is looked for, as node-cron does. */
const MAX_SEARCH_DAYS = 366 * 100;

/**
 * The test's phase in [0, 1): the first 48 bits of SHA-256 of its id, as a fraction. Uniform for any
 * ids (sequential, UUIDs), the same on every agent, and simple to reproduce elsewhere.
 */
export function testPhase(testId: string): number {
  return createHash('sha256').update(testId).digest().readUIntBE(0, 6) / 2 ** 48;
}

/** A key equal for equal schedules (whitespace in a cron does not count). */
export function scheduleKey(schedule: Schedule): string {
  if (schedule.interval_s !== undefined) return `interval:${schedule.interval_s}`;
  if (schedule.cron !== undefined) return `cron:${normalizeCron(schedule.cron)}`;
  throw new Error('schedule has neither cron nor interval_s');
}

/** The slots of a schedule validated by `scheduleSchema`. Throws on an invalid cron. */
export function createSlotSequence(schedule: Schedule, options: SlotSequenceOptions = {}): SlotSequence {
  if (schedule.interval_s !== undefined) return new IntervalSlots(schedule.interval_s);
  if (schedule.cron !== undefined) {
    return new CronSlots(schedule.cron, options.maxCronSpreadMs ?? DEFAULT_MAX_CRON_SPREAD_MS);
  }
  throw new Error('schedule has neither cron nor interval_s');
}

/** The slots and run times of one test. */
export class SlotPlan {
  readonly phase: number;

  constructor(
    readonly testId: string,
    readonly slots: SlotSequence,
  ) {
    this.phase = testPhase(testId);
  }

  runAtMs(slotMs: number): number {
    return slotMs + Math.floor(this.phase * this.slots.spreadMs(slotMs));
  }

  /** The first slot strictly after `afterMs`, with its run time. */
  nextSlot(afterMs: number): SlotTimes | null {
    const slotMs = this.slots.nextAfter(afterMs);
    return slotMs === null ? null : { slotMs, runAtMs: this.runAtMs(slotMs) };
  }

  /**
   * Where a test starts (new, re-planned, or after a restart): the first slot after `lastSlotMs` whose
   * run time has not passed. Slots whose run time passed are not run late: a restart neither re-runs
   * a slot nor runs the missed ones in a burst.
   */
  firstRun(nowMs: number, lastSlotMs?: number): SlotTimes | null {
    // Slots at or before `nowMs − maxSpreadMs` run before now: no need to walk through them.
    let afterMs = nowMs - this.slots.maxSpreadMs;
    if (lastSlotMs !== undefined && lastSlotMs > afterMs) afterMs = lastSlotMs;
    for (;;) {
      const next = this.nextSlot(afterMs);
      if (next === null || next.runAtMs >= nowMs) return next;
      afterMs = next.slotMs;
    }
  }

  /**
   * When `due` is being started at `nowMs` (late, after the event loop stalled): the latest slot whose
   * run time has come (`run`), how many due slots before it are `missed`, and the run after it. A stall
   * never produces a burst: one run per test, the most recent one. After a stall longer than
   * `maxCatchUp` slots the walk stops and starts over from `firstRun` (counting `maxCatchUp` missed):
   * no run then, as after a restart. The bound keeps the catching up of ten thousand tests after a
   * suspended machine wakes within a fraction of a second.
   */
  catchUp(
    due: SlotTimes,
    nowMs: number,
    maxCatchUp = 100,
  ): { run: SlotTimes | null; missed: number; next: SlotTimes | null } {
    let run = due;
    for (let missed = 0; missed < maxCatchUp; missed++) {
      const next = this.nextSlot(run.slotMs);
      if (next === null || next.runAtMs > nowMs) return { run, missed, next };
      run = next;
    }
    return { run: null, missed: maxCatchUp, next: this.firstRun(nowMs, run.slotMs) };
  }
}

class IntervalSlots implements SlotSequence {
  readonly key: string;
  readonly maxSpreadMs: number;
  private readonly periodMs: number;

  constructor(intervalS: number) {
    this.key = `interval:${intervalS}`;
    this.periodMs = intervalS * SECOND_MS;
    this.maxSpreadMs = this.periodMs;
  }

  nextAfter(afterMs: number): number {
    return (Math.floor(afterMs / this.periodMs) + 1) * this.periodMs;
  }

  spreadMs(): number {
    return this.periodMs;
  }
}

function normalizeCron(cron: string): string {
  return cron.trim().replace(/\s+/g, ' ');
}

const sortedUnique = (values: readonly (number | string)[]): number[] =>
  [...new Set(values.filter((v): v is number => typeof v === 'number'))].sort((a, b) => a - b);

/** The values of a day field when they are plain numbers; null when node-cron tokens (L, W, #) appear. */
const plainDays = (values: readonly (number | string)[]): ReadonlySet<number> | null =>
  values.every((v) => typeof v === 'number') ? new Set(values) : null;

/**
 * A cron's fire times in UTC. node-cron is the authority on what fires: its `parse` expands the
 * fields (names, ranges, steps, `@hourly`, the default seconds field) and its matcher decides each
 * candidate day (day-of-month tokens `L`, `15W`, `L-2`, weekday tokens `5L`, `1#2`, and its rule that
 * day of month and day of week must both match). Within a day the first matching time is plain
 * arithmetic on the expanded second, minute and hour lists, exact in UTC (no DST). node-cron's own
 * `getNextRun` cannot serve: it only looks from the real current time.
 */
class CronSlots implements SlotSequence {
  readonly key: string;
  readonly maxSpreadMs: number;
  private readonly seconds: readonly number[];
  private readonly minutes: readonly number[];
  private readonly hours: readonly number[];
  private readonly months: ReadonlySet<number>;
  private readonly daysOfMonth: ReadonlySet<number> | null;
  private readonly daysOfWeek: ReadonlySet<number> | null;
  /** Seconds into a day of the day's first candidate time: where node-cron is asked about the day. */
  private readonly firstSecondOfDay: number;
  private readonly matches: (date: Date) => boolean;
  private checkedDayMs = Number.NaN;
  private checkedDayMatches = false;
  /**
   * Recent answers of `nextAfter`, by the whole second searched from: the tests sharing a cron all
   * ask about the same slots, so most questions are answered once per slot for all of them.
   */
  private readonly recent = new Map<number, number | null>();

  constructor(cron: string, maxSpreadCapMs: number) {
    const expression = normalizeCron(cron);
    const fields = parse(expression);
    this.key = `cron:${expression}`;
    this.maxSpreadMs = maxSpreadCapMs;
    this.seconds = sortedUnique(fields.second);
    this.minutes = sortedUnique(fields.minute);
    this.hours = sortedUnique(fields.hour);
    this.months = new Set(sortedUnique(fields.month));
    this.daysOfMonth = plainDays(fields.dayOfMonth);
    this.daysOfWeek = plainDays(fields.dayOfWeek);
    const [hour = 0] = this.hours;
    const [minute = 0] = this.minutes;
    const [second = 0] = this.seconds;
    this.firstSecondOfDay = hour * 3600 + minute * 60 + second;
    // The task is never started: only its matcher is used. Destroying it at once removes it from
    // node-cron's global task registry, so a sequence nobody uses any more is garbage; `match` reads
    // only the parsed pattern and answers the same on a destroyed task.
    const task = createTask(expression, () => undefined, { timezone: 'UTC' });
    void task.destroy();
    this.matches = (date) => task.match(date);
  }

  nextAfter(afterMs: number): number | null {
    const fromMs = Math.floor(afterMs / SECOND_MS) * SECOND_MS + SECOND_MS;
    const known = this.recent.get(fromMs);
    if (known !== undefined) return known;
    const next = this.search(fromMs);
    if (this.recent.size >= 16) this.recent.clear();
    this.recent.set(fromMs, next);
    return next;
  }

  spreadMs(slotMs: number): number {
    const next = this.nextAfter(slotMs);
    return next === null ? this.maxSpreadMs : Math.min(next - slotMs, this.maxSpreadMs);
  }

  /** The first fire time at or after `fromMs` (a whole second). */
  private search(fromMs: number): number | null {
    let dayMs = Math.floor(fromMs / DAY_MS) * DAY_MS;
    let fromSecond = (fromMs - dayMs) / SECOND_MS;
    for (let day = 0; day < MAX_SEARCH_DAYS; day++) {
      const second = this.firstSecondFrom(fromSecond);
      if (second !== null && this.dayMatches(dayMs)) return dayMs + second * SECOND_MS;
      dayMs += DAY_MS;
      fromSecond = 0;
    }
    return null;
  }

  /** The first second of a day, at or after `fromSecond`, that the second, minute and hour fields allow. */
  private firstSecondFrom(fromSecond: number): number | null {
    for (const hour of this.hours) {
      const hourStart = hour * 3600;
      if (hourStart + 3599 < fromSecond) continue;
      for (const minute of this.minutes) {
        const minuteStart = hourStart + minute * 60;
        if (minuteStart + 59 < fromSecond) continue;
        for (const second of this.seconds) {
          if (minuteStart + second >= fromSecond) return minuteStart + second;
        }
      }
    }
    return null;
  }

  private dayMatches(dayMs: number): boolean {
    if (dayMs !== this.checkedDayMs) {
      const date = new Date(dayMs);
      // Plain numbers are checked here first, cheaply; node-cron has the last word on every day.
      this.checkedDayMatches =
        this.months.has(date.getUTCMonth() + 1) &&
        (this.daysOfMonth === null || this.daysOfMonth.has(date.getUTCDate())) &&
        (this.daysOfWeek === null || this.daysOfWeek.has(date.getUTCDay())) &&
        this.matches(new Date(dayMs + this.firstSecondOfDay * SECOND_MS));
      this.checkedDayMs = dayMs;
    }
    return this.checkedDayMatches;
  }
}
