import { describe, expect, it } from 'vitest';
import { ExpositionError, writeExposition } from './exposition';
import { parseExposition, sampleValue } from './exposition-parser';
import { Histogram, histogram } from './histogram';

describe(Histogram.name, () => {
  it('counts each value into the first bucket whose bound is at least the value, cumulatively', () => {
    const h = new Histogram([0.5, 1, 5]);
    for (const value of [0.1, 0.5, 0.7, 1, 4, 100, Number.NaN]) h.observe(value);
    const families = parseExposition(writeExposition([histogram('lag_seconds', 'Lag', h)]));
    expect(families).toHaveLength(1);
    expect(families[0]?.type).toBe('histogram');
    expect(
      ['0.5', '1', '5', '+Inf'].map((le) => sampleValue(families, 'lag_seconds_bucket', { le })),
    ).toEqual([2, 4, 5, 6]);
    expect(sampleValue(families, 'lag_seconds_count')).toBe(6);
    expect(sampleValue(families, 'lag_seconds_sum')).toBeCloseTo(106.3, 10);
  });

  it('writes a histogram with nothing observed as zero buckets', () => {
    const text = writeExposition([histogram('x', 'h', new Histogram([1]), { replica: 'a' })]);
    expect(text).toBe(
      [
        '# HELP x h',
        '# TYPE x histogram',
        'x_bucket{replica="a",le="1"} 0',
        'x_bucket{replica="a",le="+Inf"} 0',
        'x_sum{replica="a"} 0',
        'x_count{replica="a"} 0',
        '',
      ].join('\n'),
    );
    expect(() => parseExposition(text)).not.toThrow();
  });

  it('refuses bounds that are not finite and ascending', () => {
    for (const bounds of [[1, 1], [2, 1], [1, Infinity], [Number.NaN]]) {
      expect(() => new Histogram(bounds)).toThrow(ExpositionError);
    }
  });
});
