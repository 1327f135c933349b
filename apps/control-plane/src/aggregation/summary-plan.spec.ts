import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  planSummary,
  seriesStep,
  testWatermarks,
  type Horizons,
  type Watermarks,
} from './summary-plan';

const NOW = Date.UTC(2026, 10, 21, 8, 42, 17, 345);
const horizons: Horizons = {
  raw: NOW - 30 * DAY_MS,
  minute: NOW - 90 * DAY_MS,
  hour: NOW - 400 * DAY_MS,
  day: 0,
};
/** Everything rolled up as of a minute ago: the last round ran at 08:41:xx. */
const watermarks: Watermarks = {
  minute: Date.UTC(2026, 10, 21, 8, 41),
  hour: Date.UTC(2026, 10, 21, 8),
  day: Date.UTC(2026, 10, 21),
};
const iso = (t: number) => new Date(t).toISOString();
const show = (plan: ReturnType<typeof planSummary>) =>
  plan.fragments.map((f) => `${f.source} ${iso(f.from)} ${iso(f.to)}`);

describe(planSummary.name, () => {
  it('reads a 30-day window from days, and hours, minutes and raw results only at its edges', () => {
    const plan = planSummary(NOW - 30 * DAY_MS, NOW, watermarks, horizons);
    expect(plan.stepMs).toBe(DAY_MS);
    expect(show(plan)).toEqual([
      'raw 2026-10-22T08:42:17.345Z 2026-10-22T08:43:00.000Z',
      'minute 2026-10-22T08:43:00.000Z 2026-10-22T09:00:00.000Z',
      'hour 2026-10-22T09:00:00.000Z 2026-10-23T00:00:00.000Z',
      'day 2026-10-23T00:00:00.000Z 2026-11-21T00:00:00.000Z',
      'hour 2026-11-21T00:00:00.000Z 2026-11-21T08:00:00.000Z',
      'minute 2026-11-21T08:00:00.000Z 2026-11-21T08:41:00.000Z',
      'raw 2026-11-21T08:41:00.000Z 2026-11-21T08:42:17.345Z',
    ]);
  });

  it('uses no unit longer than a series step: a 7-day window by hours', () => {
    const plan = planSummary(NOW - 7 * DAY_MS, NOW, watermarks, horizons);
    expect(plan.stepMs).toBe(6 * HOUR_MS);
    expect(plan.fragments.map((f) => f.source)).toEqual(['raw', 'minute', 'hour', 'minute', 'raw']);
  });

  it('reads raw results and minutes beyond what is rolled up', () => {
    const stale = { minute: NOW - 2 * HOUR_MS, hour: NOW - 5 * HOUR_MS, day: NOW - 3 * DAY_MS };
    const plan = planSummary(NOW - DAY_MS, NOW, stale, horizons);
    const last = plan.fragments.at(-1)!;
    expect(last).toEqual({ source: 'raw', from: Math.floor(stale.minute / MINUTE_MS) * MINUTE_MS, to: NOW });
    expect(plan.fragments.filter((f) => f.source === 'hour').every((f) => f.to <= stale.hour)).toBe(true);
  });

  it('covers the window exactly, in order, with whole buckets, whatever the window', () => {
    for (let i = 0; i < 500; i++) {
      const span = Math.ceil((((i * 7919) % 1000) / 1000) * 90 * DAY_MS) + 1;
      const to = NOW - ((i * 104729) % (10 * DAY_MS));
      const plan = planSummary(to - span, to, watermarks, horizons);
      let at = plan.from;
      for (const f of plan.fragments) {
        expect(f.from).toBe(at);
        expect(f.to).toBeGreaterThan(f.from);
        if (f.source !== 'raw') {
          const unit = { day: DAY_MS, hour: HOUR_MS, minute: MINUTE_MS }[f.source];
          expect(f.from % unit).toBe(0);
          expect(f.to % unit).toBe(0);
          expect(unit).toBeLessThanOrEqual(plan.stepMs);
        } else {
          expect(f.from).toBeGreaterThanOrEqual(horizons.raw);
        }
        at = f.to;
      }
      expect(at).toBe(plan.to);
    }
  });

  it('rounds an edge older than the raw results kept to the minute, and steps by day past the minutes', () => {
    const plan = planSummary(NOW - 90 * DAY_MS, NOW, watermarks, horizons);
    expect(plan.from).toBe(Math.ceil((NOW - 90 * DAY_MS) / MINUTE_MS) * MINUTE_MS);
    expect(plan.fragments[0]!.source).toBe('minute');
    const old = planSummary(NOW - 120 * DAY_MS, NOW - 119 * DAY_MS, watermarks, horizons);
    expect(old.from % HOUR_MS).toBe(0);
    expect(old.to % HOUR_MS).toBe(0);
    expect(old.stepMs).toBe(HOUR_MS);
    expect(old.fragments.map((f) => f.source)).toEqual(['hour']);
  });
});

describe(seriesStep.name, () => {
  it('steps by minute up to 3 hours, by hour up to 3 days, by 6 hours up to 15 days, else by day', () => {
    expect([5 * MINUTE_MS, HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS, 90 * DAY_MS].map(seriesStep)).toEqual([
      MINUTE_MS,
      MINUTE_MS,
      HOUR_MS,
      6 * HOUR_MS,
      DAY_MS,
      DAY_MS,
    ]);
  });
});

describe(testWatermarks.name, () => {
  it('keeps the watermarks when nothing of the test waits', () => {
    expect(testWatermarks(watermarks, {})).toEqual(watermarks);
  });

  it('lowers them to a late result still queued: its minute, hour and day are read from finer data', () => {
    const late = Date.UTC(2026, 10, 19, 13, 27, 40);
    expect(testWatermarks(watermarks, { queuedFrom: late })).toEqual({
      minute: Date.UTC(2026, 10, 19, 13, 27),
      hour: Date.UTC(2026, 10, 19, 13),
      day: Date.UTC(2026, 10, 19),
    });
    // Then the plan reads that day from hours, that hour from minutes, and raw results from that minute.
    const plan = planSummary(
      NOW - 3 * DAY_MS,
      NOW,
      testWatermarks(watermarks, { queuedFrom: late }),
      horizons,
    );
    expect(show(plan).filter((f) => f.startsWith('raw'))).toEqual([
      'raw 2026-11-18T08:42:17.345Z 2026-11-18T08:43:00.000Z',
      'raw 2026-11-19T13:27:00.000Z 2026-11-21T08:42:17.345Z',
    ]);
  });

  it('lowers the hour and day watermarks to an hour or day waiting to be recomputed, not the minute one', () => {
    expect(
      testWatermarks(watermarks, {
        pendingHourFrom: Date.UTC(2026, 10, 20, 22),
        pendingDayFrom: Date.UTC(2026, 10, 18),
      }),
    ).toEqual({ minute: watermarks.minute, hour: Date.UTC(2026, 10, 20, 22), day: Date.UTC(2026, 10, 18) });
    // The current hour and day are always pending, and already above the watermarks.
    expect(
      testWatermarks(watermarks, {
        pendingHourFrom: Date.UTC(2026, 10, 21, 8),
        pendingDayFrom: Date.UTC(2026, 10, 21),
      }),
    ).toEqual(watermarks);
  });
});
