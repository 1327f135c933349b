import { createTask, parse } from 'node-cron';
import type { Schedule } from '@wsmon/contracts';

const SECOND_MS = 1000;
const DAY_S = 86_400;
const DAY_MS = DAY_S * SECOND_MS;
/** Days of fire times looked at around now for a cron's longest gap: a year each way covers every month. */
const HORIZON_DAYS = 366;
/** A cron that fires on fewer than two days within the horizon (`0 0 29 2 *`) is given this period. */
const NEVER_MS = HORIZON_DAYS * DAY_MS;

const cronPeriods = new Map<string, number>();

/**
 * The longest time between two consecutive slots of a schedule: the interval, or a cron's longest gap
 * between fire times (UTC, as the agents compute slots). A cron's gaps come from node-cron's own
 * parser (the times of a day) and matcher (which days fire), over a year before and after `nowMs`;
 * the answer is cached per expression.
 */
export function schedulePeriodMs(schedule: Schedule, nowMs = Date.now()): number {
  if (schedule.interval_s !== undefined) return schedule.interval_s * SECOND_MS;
  const cron = schedule.cron!.trim().replace(/\s+/g, ' ');
  let period = cronPeriods.get(cron);
  if (period === undefined) {
    period = cronLongestGapMs(cron, nowMs);
    if (cronPeriods.size >= 1000) cronPeriods.clear();
    cronPeriods.set(cron, period);
  }
  return period;
}

function cronLongestGapMs(cron: string, nowMs: number): number {
  const fields = parse(cron);
  const numbers = (values: readonly (number | string)[]) =>
    [...new Set(values.filter((v): v is number => typeof v === 'number'))].sort((a, b) => a - b);
  // The fire times of a firing day, in seconds since midnight, ascending.
  const times: number[] = [];
  for (const hour of numbers(fields.hour))
    for (const minute of numbers(fields.minute))
      for (const second of numbers(fields.second)) times.push(hour * 3600 + minute * 60 + second);
  if (!times.length) return NEVER_MS;
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);

  // Only the matcher knows the day tokens (L, W, #) and its day-of-month/day-of-week rule.
  const task = createTask(cron, () => undefined, { timezone: 'UTC' });
  void task.destroy();
  const today = Math.floor(nowMs / DAY_MS);
  let previousDay: number | undefined;
  let firingDays = 0;
  for (let day = today - HORIZON_DAYS; day <= today + HORIZON_DAYS; day++) {
    if (!task.match(new Date(day * DAY_MS + times[0]! * SECOND_MS))) continue;
    if (previousDay !== undefined) {
      // From the last fire time of one firing day to the first of the next.
      longest = Math.max(longest, (day - previousDay) * DAY_S - times.at(-1)! + times[0]!);
    }
    previousDay = day;
    firingDays++;
  }
  // Fewer than two firing days in two years (`0 0 29 2 *`): as good as never.
  return firingDays < 2 ? NEVER_MS : Math.max(longest, 1) * SECOND_MS;
}
