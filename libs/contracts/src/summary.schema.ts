import { z } from 'zod';
import { custom, instant, slug } from './schema-parts';

/**
 * The query of a test's summary (`GET /api/v1/tests/{id}/summary`, gRPC `GetTestSummary`): a named window
 * ending now, or an explicit range, and optionally one location.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** The named windows, each ending now, and their lengths in milliseconds. */
export const SUMMARY_WINDOWS = {
  '5m': 5 * MINUTE_MS,
  '1h': HOUR_MS,
  '24h': DAY_MS,
  '7d': 7 * DAY_MS,
  '30d': 30 * DAY_MS,
  '90d': 90 * DAY_MS,
} as const;
export type SummaryWindow = keyof typeof SUMMARY_WINDOWS;

/** The window when neither `window` nor `from` is given. */
export const DEFAULT_SUMMARY_WINDOW: SummaryWindow = '24h';
/** The longest explicit range, `to` minus `from`: the longest named window. */
export const MAX_SUMMARY_SPAN_MS = SUMMARY_WINDOWS['90d'];

/**
 * `window` (5m, 1h, 24h, 7d, 30d or 90d, ending now; default 24h) or `from` with an optional `to` (default
 * now): a range of at most 90 days. `location` narrows the summary to the location of that name.
 */
export const testSummaryQuerySchema = z
  .strictObject({
    window: z.enum(Object.keys(SUMMARY_WINDOWS) as [SummaryWindow, ...SummaryWindow[]]).optional(),
    /** Inclusive. */
    from: instant.optional(),
    /** Exclusive. Default: now. */
    to: instant.optional(),
    location: slug('location name').optional(),
  })
  .superRefine((query, ctx) => {
    if (query.window !== undefined && (query.from !== undefined || query.to !== undefined)) {
      custom(ctx, ['window'], 'exclusive', 'cannot be combined with from and to');
      return;
    }
    if (query.to !== undefined && query.from === undefined) {
      custom(ctx, ['from'], 'required', 'is required with to');
      return;
    }
    if (query.from === undefined) return;
    const from = Date.parse(query.from);
    const to = query.to === undefined ? Date.now() : Date.parse(query.to);
    if (from >= to) {
      if (query.to === undefined) custom(ctx, ['from'], 'past', 'must be in the past');
      else custom(ctx, ['to'], 'after_from', 'must be later than from');
    } else if (to - from > MAX_SUMMARY_SPAN_MS) {
      custom(ctx, ['from'], 'max_span', 'must be at most 90 days before to');
    }
  });
export type TestSummaryQuery = z.output<typeof testSummaryQuerySchema>;
