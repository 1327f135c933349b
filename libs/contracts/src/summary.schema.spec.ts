import { describe, expect, it } from 'vitest';
import { parseInput } from './resources.schema';
import { MAX_SUMMARY_SPAN_MS, SUMMARY_WINDOWS, testSummaryQuerySchema } from './summary.schema';

const DAY_MS = 86_400_000;

function errors(input: unknown): string[] {
  const outcome = parseInput(testSummaryQuerySchema, input);
  if (outcome.ok) throw new Error(`expected errors, got ${JSON.stringify(outcome.value)}`);
  for (const error of outcome.errors) expect(error.message.startsWith(`${error.path}: `)).toBe(true);
  return outcome.errors.map((e) => `${e.path} ${e.rule}: ${e.message}`);
}

function parsed(input: unknown) {
  const outcome = parseInput(testSummaryQuerySchema, input);
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.errors));
  return outcome.value;
}

describe('testSummaryQuerySchema', () => {
  it('takes every named window, an explicit range, a range ending now, and a location', () => {
    expect(Object.keys(SUMMARY_WINDOWS)).toEqual(['5m', '1h', '24h', '7d', '30d', '90d']);
    for (const window of Object.keys(SUMMARY_WINDOWS)) expect(parsed({ window })).toEqual({ window });
    expect(parsed({})).toEqual({});
    const range = { from: '2026-01-01T00:00:00Z', to: '2026-01-31T00:00:00.5+02:00', location: 'eu-west-1' };
    expect(parsed(range)).toEqual(range);
    expect(parsed({ from: new Date(Date.now() - DAY_MS).toISOString() })).toHaveProperty('from');
  });

  it('names the field and the rule of each mistake', () => {
    expect(errors({ window: '2d', location: 'EU', order: 'asc' })).toEqual([
      'window enum: window: must be one of "5m", "1h", "24h", "7d", "30d", "90d"',
      'location format: location: must be a location name: lower-case letters, digits and dashes',
      'order unknown_field: order: is not a known field',
    ]);
    expect(errors({ from: 'yesterday' })).toEqual(['from format: from: must be a valid datetime']);
    expect(errors({ window: '1h', from: '2026-01-01T00:00:00Z' })).toEqual([
      'window exclusive: window: cannot be combined with from and to',
    ]);
    expect(errors({ to: '2026-01-01T00:00:00Z' })).toEqual(['from required: from: is required with to']);
    expect(errors({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' })).toEqual([
      'to after_from: to: must be later than from',
    ]);
    expect(errors({ from: new Date(Date.now() + DAY_MS).toISOString() })).toEqual([
      'from past: from: must be in the past',
    ]);
    const to = Date.parse('2026-06-01T00:00:00Z');
    expect(
      errors({ from: new Date(to - MAX_SUMMARY_SPAN_MS - 1).toISOString(), to: new Date(to).toISOString() }),
    ).toEqual(['from max_span: from: must be at most 90 days before to']);
    expect(
      parsed({ from: new Date(to - MAX_SUMMARY_SPAN_MS).toISOString(), to: new Date(to).toISOString() }),
    ).toHaveProperty('to');
  });
});
