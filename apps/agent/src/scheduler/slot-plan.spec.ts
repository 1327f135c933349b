import { createTask, getTasks } from 'node-cron';
import type { Schedule } from '@wsmon/contracts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_MAX_CRON_SPREAD_MS,
  SlotPlan,
  createSlotSequence,
  scheduleKey,
  testPhase,
  type SlotTimes,
} from './slot-plan';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const at = (iso: string) => Date.parse(iso);
const ids = (count: number) => Array.from({ length: count }, (_, i) => `test-${i}`);
const planOf = (testId: string, schedule: Schedule, maxCronSpreadMs?: number) =>
  new SlotPlan(testId, createSlotSequence(schedule, { maxCronSpreadMs }));

/** The first `count` slots strictly after `fromMs`. */
function slotsAfter(plan: SlotPlan, fromMs: number, count: number): SlotTimes[] {
  const slots: SlotTimes[] = [];
  let after = fromMs;
  for (let i = 0; i < count; i++) {
    const next = plan.nextSlot(after);
    if (next === null) break;
    slots.push(next);
    after = next.slotMs;
  }
  return slots;
}

describe(testPhase.name, () => {
  it('is a fraction in [0, 1), the same at every call, different for different ids', () => {
    const phases = ids(1000).map(testPhase);
    for (const phase of phases) {
      expect(phase).toBeGreaterThanOrEqual(0);
      expect(phase).toBeLessThan(1);
    }
    expect(ids(1000).map(testPhase)).toEqual(phases);
    expect(new Set(phases).size).toBe(1000);
  });

  it('is fixed by the id alone: agents and restarts agree (a known value)', () => {
    expect(testPhase('3f0c1c9e-6b4e-4a57-9d7e-0c8a2b1f5d10')).toBe(
      testPhase('3f0c1c9e-6b4e-4a57-9d7e-0c8a2b1f5d10'),
    );
    expect(testPhase('')).toBeCloseTo(0xe3b0c44298fc / 2 ** 48, 12);
  });

  it('spreads 1000 ids evenly over [0, 1)', () => {
    const phases = ids(1000)
      .map(testPhase)
      .sort((a, b) => a - b);
    const deciles = Array.from({ length: 10 }, () => 0);
    for (const phase of phases) deciles[Math.floor(phase * 10)]! += 1;
    for (const count of deciles) expect(count).toBeGreaterThanOrEqual(70);
    for (const count of deciles) expect(count).toBeLessThanOrEqual(130);
    // The largest gap between neighbours: about ln(1000)/1000 ≈ 0.007 for uniform points.
    const gaps = phases.slice(1).map((phase, i) => phase - phases[i]!);
    expect(Math.max(...gaps, phases[0]!, 1 - phases[999]!)).toBeLessThan(0.015);
  });
});

describe(scheduleKey.name, () => {
  it('is equal for equal schedules, whitespace aside, and tells kinds apart', () => {
    expect(scheduleKey({ cron: ' */5  * * * * ' })).toBe(scheduleKey({ cron: '*/5 * * * *' }));
    expect(scheduleKey({ interval_s: 60 })).toBe('interval:60');
    expect(scheduleKey({ interval_s: 60 })).not.toBe(scheduleKey({ interval_s: 30 }));
    expect(scheduleKey({ cron: '0 * * * *' })).not.toBe(scheduleKey({ interval_s: 3600 }));
  });
});

describe('interval slots', () => {
  it('are the multiples of the interval since the epoch, strictly after the time asked', () => {
    const plan = planOf('a', { interval_s: 60 });
    expect(plan.nextSlot(at('2025-03-04T10:20:30.500Z'))?.slotMs).toBe(at('2025-03-04T10:21:00Z'));
    expect(plan.nextSlot(at('2025-03-04T10:21:00Z'))?.slotMs).toBe(at('2025-03-04T10:22:00Z'));
    expect(plan.nextSlot(at('2025-03-04T10:20:59.999Z'))?.slotMs).toBe(at('2025-03-04T10:21:00Z'));
    const odd = planOf('a', { interval_s: 7 });
    const slot = odd.nextSlot(at('2025-03-04T10:20:30Z'))!.slotMs;
    expect(slot % 7000).toBe(0);
    expect(slot - at('2025-03-04T10:20:30Z')).toBeLessThanOrEqual(7000);
  });

  it('run at slot + phase × interval: the same offset at every slot, on every plan of the test', () => {
    const plan = planOf('a', { interval_s: 300 });
    const expected = Math.floor(testPhase('a') * 300_000);
    for (const { slotMs, runAtMs } of slotsAfter(plan, at('2025-03-04T00:00:00Z'), 50)) {
      expect(runAtMs - slotMs).toBe(expected);
    }
    expect(planOf('a', { interval_s: 300 }).nextSlot(0)).toEqual(plan.nextSlot(0));
  });

  it('spread 1000 "every minute" tests over the minute: no second has more than 35 starts', () => {
    const slot = at('2025-03-04T10:21:00Z');
    const perSecond = Array.from({ length: 60 }, () => 0);
    for (const id of ids(1000)) {
      const { runAtMs } = planOf(id, { interval_s: 60 }).nextSlot(slot - 1)!;
      expect(runAtMs - slot).toBeGreaterThanOrEqual(0);
      expect(runAtMs - slot).toBeLessThan(MINUTE);
      perSecond[Math.floor((runAtMs - slot) / 1000)]! += 1;
    }
    expect(Math.max(...perSecond)).toBeLessThanOrEqual(35);
    expect(Math.min(...perSecond)).toBeGreaterThanOrEqual(3);
  });

  it('handle one second and one week', () => {
    const second = planOf('a', { interval_s: 1 }).nextSlot(1500)!;
    expect(second.slotMs).toBe(2000);
    expect(second.runAtMs - second.slotMs).toBeLessThan(1000);
    const week = planOf('a', { interval_s: 7 * 24 * 3600 }).nextSlot(at('2025-03-04T10:00:00Z'))!;
    // The epoch was a Thursday: weekly slots are Thursdays at 00:00 UTC.
    expect(new Date(week.slotMs).toISOString()).toBe('2025-03-06T00:00:00.000Z');
  });
});

describe('cron slots', () => {
  afterEach(() => vi.useRealTimers());

  it('five fields: fire times in UTC at second 0, spread over the gap', () => {
    const plan = planOf('a', { cron: '*/5 * * * *' });
    const slots = slotsAfter(plan, at('2025-03-04T10:21:13Z'), 3).map((s) =>
      new Date(s.slotMs).toISOString(),
    );
    expect(slots).toEqual([
      '2025-03-04T10:25:00.000Z',
      '2025-03-04T10:30:00.000Z',
      '2025-03-04T10:35:00.000Z',
    ]);
    const { slotMs, runAtMs } = plan.nextSlot(at('2025-03-04T10:21:13Z'))!;
    expect(runAtMs - slotMs).toBe(Math.floor(testPhase('a') * 5 * MINUTE));
  });

  it('six fields: seconds first', () => {
    const plan = planOf('a', { cron: '*/15 * * * * *' });
    const slots = slotsAfter(plan, at('2025-03-04T10:21:13.250Z'), 4).map((s) => s.slotMs);
    expect(slots).toEqual([15, 30, 45, 60].map((s) => at('2025-03-04T10:21:00Z') + s * 1000));
    for (const { slotMs, runAtMs } of slotsAfter(plan, 0, 20)) {
      expect(runAtMs - slotMs).toBe(Math.floor(testPhase('a') * 15_000));
    }
  });

  it('nicknames and names: @hourly, MON-FRI, JAN', () => {
    expect(planOf('a', { cron: '@hourly' }).nextSlot(at('2025-03-04T10:21:00Z'))?.slotMs).toBe(
      at('2025-03-04T11:00:00Z'),
    );
    expect(planOf('a', { cron: '0 0 1 JAN *' }).nextSlot(at('2025-03-04T10:21:00Z'))?.slotMs).toBe(
      at('2026-01-01T00:00:00Z'),
    );
  });

  it('"every minute": a thousand tests spread over the whole minute, not at second 0', () => {
    const slot = at('2025-03-04T10:22:00Z');
    const perSecond = Array.from({ length: 60 }, () => 0);
    for (const id of ids(1000)) {
      const { slotMs, runAtMs } = planOf(id, { cron: '* * * * *' }).nextSlot(slot - 1)!;
      expect(slotMs).toBe(slot);
      perSecond[Math.floor((runAtMs - slot) / 1000)]! += 1;
    }
    expect(Math.max(...perSecond)).toBeLessThanOrEqual(35);
    expect(perSecond[0]).toBeLessThanOrEqual(35);
  });

  it('irregular gaps: each run is offset within the gap to the next fire time, so runs stay in order', () => {
    const plans = ids(200).map((id) => planOf(id, { cron: '0,10 * * * * *' }));
    for (const plan of plans) {
      const [first, second, third] = slotsAfter(plan, at('2025-03-04T10:21:30Z'), 3);
      expect(first!.slotMs).toBe(at('2025-03-04T10:22:00Z'));
      expect(second!.slotMs).toBe(at('2025-03-04T10:22:10Z'));
      expect(first!.runAtMs - first!.slotMs).toBe(Math.floor(plan.phase * 10_000));
      expect(second!.runAtMs - second!.slotMs).toBe(Math.floor(plan.phase * 50_000));
      expect(first!.runAtMs).toBeLessThan(second!.slotMs);
      expect(second!.runAtMs).toBeLessThan(third!.slotMs);
    }
  });

  it('a time of day on weekdays: Friday is followed by Monday, and runs stay near 09:00 (bounded spread)', () => {
    const plan = planOf('a', { cron: '0 0 9 * * MON-FRI' });
    const friday = at('2025-03-07T09:00:00Z');
    const next = plan.nextSlot(friday)!;
    expect(new Date(next.slotMs).toISOString()).toBe('2025-03-10T09:00:00.000Z');
    for (const id of ids(300)) {
      const run = planOf(id, { cron: '0 0 9 * * MON-FRI' }).nextSlot(friday - 1)!;
      expect(run.slotMs).toBe(friday);
      expect(run.runAtMs - friday).toBeLessThan(DEFAULT_MAX_CRON_SPREAD_MS);
    }
    // Without the bound the spread is the gap: 72 hours after Friday, 24 after Monday.
    const unbounded = planOf('a', { cron: '0 0 9 * * MON-FRI' }, Number.POSITIVE_INFINITY);
    expect(unbounded.runAtMs(friday) - friday).toBe(Math.floor(testPhase('a') * 72 * HOUR));
    expect(unbounded.runAtMs(next.slotMs) - next.slotMs).toBe(Math.floor(testPhase('a') * 24 * HOUR));
  });

  it("node-cron's day tokens: last day of month, last-day offsets, nth weekday", () => {
    const lastDay = planOf('a', { cron: '0 0 12 L * *' });
    expect(lastDay.nextSlot(at('2024-02-10T00:00:00Z'))?.slotMs).toBe(at('2024-02-29T12:00:00Z'));
    expect(lastDay.nextSlot(at('2025-02-10T00:00:00Z'))?.slotMs).toBe(at('2025-02-28T12:00:00Z'));
    const firstMonday = planOf('a', { cron: '0 30 8 * * 1#1' });
    expect(firstMonday.nextSlot(at('2025-03-04T00:00:00Z'))?.slotMs).toBe(at('2025-04-07T08:30:00Z'));
    const leap = planOf('a', { cron: '0 0 0 29 2 *' });
    expect(leap.nextSlot(at('2025-03-01T00:00:00Z'))?.slotMs).toBe(at('2028-02-29T00:00:00Z'));
  });

  it('day of month and day of week must both match, as in node-cron', () => {
    const fridayThe13th = planOf('a', { cron: '0 0 0 13 * FRI' });
    expect(fridayThe13th.nextSlot(at('2025-01-01T00:00:00Z'))?.slotMs).toBe(at('2025-06-13T00:00:00Z'));
  });

  it('a valid cron that never fires has no slot', () => {
    // L-30 of February would be before the 1st.
    expect(planOf('a', { cron: '0 0 0 L-30 2 *' }).nextSlot(0)).toBeNull();
  });

  it("agrees with node-cron's own next runs", () => {
    const crons = [
      '* * * * *',
      '*/7 * * * * *',
      '0 */5 * * * *',
      '15 10 * * *',
      '0 0 9 * * MON-FRI',
      '0 0 12 L * *',
      '0 45 23 * * 5L',
      '0 0 6 15W * *',
      '@daily',
      '@weekly',
      '30 2 1-7 * 1',
      '0 0 0 1 1,7 *',
    ];
    vi.useFakeTimers();
    for (const now of [
      at('2025-03-07T23:59:58.400Z'),
      at('2024-12-31T23:00:00Z'),
      at('2026-06-15T10:00:30Z'),
    ]) {
      vi.setSystemTime(now);
      for (const cron of crons) {
        const task = createTask(cron, () => undefined, { timezone: 'UTC' });
        const expected = task.getNextRuns(6).map((date) => date.getTime());
        void task.destroy();
        expect(
          slotsAfter(planOf('a', { cron }), now, 6).map((s) => s.slotMs),
          `${cron} from ${now}`,
        ).toEqual(expected);
      }
    }
  });

  it("leaves node-cron's task registry as it found it", () => {
    const before = getTasks().size;
    createSlotSequence({ cron: '*/3 * * * *' }).nextAfter(0);
    expect(getTasks().size).toBe(before);
  });

  it('throws on an invalid cron', () => {
    expect(() => createSlotSequence({ cron: '61 * * * *' })).toThrow();
  });
});

describe(SlotPlan.name, () => {
  describe('firstRun', () => {
    const plan = planOf('a', { interval_s: 60 });
    const offset = Math.floor(testPhase('a') * MINUTE);
    const slot = at('2025-03-04T10:21:00Z');

    it('takes the current slot while its run time is still ahead, else the next', () => {
      expect(plan.firstRun(slot + offset - 1)).toEqual({ slotMs: slot, runAtMs: slot + offset });
      expect(plan.firstRun(slot + offset)).toEqual({ slotMs: slot, runAtMs: slot + offset });
      expect(plan.firstRun(slot + offset + 1)).toEqual({
        slotMs: slot + MINUTE,
        runAtMs: slot + MINUTE + offset,
      });
    });

    it('never returns a slot at or before the last one run (a clock stepped back)', () => {
      expect(plan.firstRun(slot + offset - 1, slot)).toEqual({
        slotMs: slot + MINUTE,
        runAtMs: slot + MINUTE + offset,
      });
      expect(plan.firstRun(slot - 10 * MINUTE, slot + 5 * MINUTE)?.slotMs).toBe(slot + 6 * MINUTE);
    });

    it('after a long downtime returns the next future slot only', () => {
      const run = plan.firstRun(slot + 3 * DAY + 1, slot)!;
      expect(run.runAtMs).toBeGreaterThanOrEqual(slot + 3 * DAY + 1);
      expect(run.runAtMs).toBeLessThanOrEqual(slot + 3 * DAY + 1 + MINUTE);
    });

    it('walks a fine cron quickly', () => {
      const everySecond = planOf('a', { cron: '* * * * * *' });
      const started = performance.now();
      for (let i = 0; i < 100; i++) everySecond.firstRun(slot + i * 1000 + 1);
      expect(performance.now() - started).toBeLessThan(1000);
      const run = everySecond.firstRun(slot + 1)!;
      expect(run.runAtMs).toBeGreaterThanOrEqual(slot + 1);
      expect(run.slotMs).toBeLessThanOrEqual(slot + 1000);
    });
  });

  describe('catchUp', () => {
    const plan = planOf('a', { interval_s: 10 });
    const first = plan.nextSlot(at('2025-03-04T10:21:00Z'))!;

    it('runs a due slot that is the latest due', () => {
      expect(plan.catchUp(first, first.runAtMs + 20)).toEqual({
        run: first,
        missed: 0,
        next: plan.nextSlot(first.slotMs),
      });
    });

    it('after a stall runs only the latest due slot and counts the ones before it as missed', () => {
      const outcome = plan.catchUp(first, first.runAtMs + 25_000);
      expect(outcome.missed).toBe(2);
      expect(outcome.run?.slotMs).toBe(first.slotMs + 20_000);
      expect(outcome.next?.slotMs).toBe(first.slotMs + 30_000);
    });

    it('after a stall of more than maxCatchUp (100) slots runs nothing and starts again from the next future run', () => {
      const nowMs = first.runAtMs + 5000 * 10_000 + 1;
      const outcome = plan.catchUp(first, nowMs);
      expect(outcome.run).toBeNull();
      expect(outcome.missed).toBe(100);
      expect(outcome.next?.runAtMs).toBeGreaterThan(nowMs);
      expect(outcome.next?.runAtMs).toBeLessThanOrEqual(nowMs + 10_000);
    });
  });
});
