import { describe, expect, it } from 'vitest';
import {
  counter,
  escapeHelp,
  escapeLabelValue,
  ExpositionError,
  formatValue,
  gauge,
  writeExposition,
  type MetricFamily,
} from './exposition';
import { ExpositionParseError, parseExposition, sampleValue } from './exposition-parser';

describe(writeExposition.name, () => {
  it('writes HELP, TYPE and samples, each line ending in a line feed', () => {
    const text = writeExposition([
      gauge('probe_success', 'Displays whether or not the probe was a success', 1),
      counter('wsmon_agent_runs_total', 'Runs', 3, { outcome: 'success' }),
    ]);
    expect(text).toBe(
      [
        '# HELP probe_success Displays whether or not the probe was a success',
        '# TYPE probe_success gauge',
        'probe_success 1',
        '# HELP wsmon_agent_runs_total Runs',
        '# TYPE wsmon_agent_runs_total counter',
        'wsmon_agent_runs_total{outcome="success"} 3',
        '',
      ].join('\n'),
    );
  });

  it('escapes backslash, double quote and line feed in label values, and reads back the same', () => {
    const nasty = 'C:\\probe "quoted"\nsecond line';
    const text = writeExposition([gauge('x_info', 'info', 1, { a: nasty, b: '' })]);
    expect(text).toContain('x_info{a="C:\\\\probe \\"quoted\\"\\nsecond line",b=""} 1\n');
    const [family] = parseExposition(text);
    expect(family?.samples[0]?.labels).toEqual({ a: nasty, b: '' });
  });

  it('escapes backslash and line feed in HELP, but not double quotes', () => {
    expect(escapeHelp('a\\b\n"c"')).toBe('a\\\\b\\n"c"');
    const [family] = parseExposition(writeExposition([gauge('x', 'a\\b\n"c"', 1)]));
    expect(family?.help).toBe('a\\b\n"c"');
  });

  it('writes a family without samples as metadata only', () => {
    const text = writeExposition([{ name: 'x', help: 'h', type: 'gauge', samples: [] }]);
    expect(text).toBe('# HELP x h\n# TYPE x gauge\n');
    expect(parseExposition(text)).toHaveLength(1);
  });

  it('refuses what a scrape would reject as a whole', () => {
    const bad: MetricFamily[][] = [
      [gauge('1x', 'h', 1)],
      [gauge('probe-success', 'h', 1)],
      [gauge('x', 'h', 1, { 'bad-label': 'v' })],
      [gauge('x', 'h', 1, { __name__: 'v' })],
      [gauge('x', 'h', 1), gauge('x', 'h', 2)],
      [
        {
          name: 'x',
          help: 'h',
          type: 'gauge',
          samples: [
            { labels: { a: '1', b: '2' }, value: 1 },
            { labels: { b: '2', a: '1' }, value: 2 },
          ],
        },
      ],
      [counter('wsmon_agent_runs', 'a counter without _total', 1)],
      [counter('wsmon_agent_runs_total', 'h', -1)],
      [{ name: 'g', help: 'h', type: 'gauge', samples: [{ suffix: '_sum', value: 1 }] }],
      [{ name: 'h', help: 'h', type: 'histogram', samples: [{ value: 1 }] }],
      [{ name: 'h', help: 'h', type: 'histogram', samples: [{ suffix: '_bucket', value: 1 }] }],
      [
        {
          name: 'h',
          help: 'h',
          type: 'histogram',
          samples: [
            { suffix: '_bucket', labels: { le: '1' }, value: 1 },
            { suffix: '_count', value: 1 },
          ],
        },
      ],
    ];
    for (const families of bad) expect(() => writeExposition(families)).toThrow(ExpositionError);
  });

  it('writes nothing for no families', () => {
    expect(writeExposition([])).toBe('');
  });
});

describe(formatValue.name, () => {
  it.each([
    [1, '1'],
    [0, '0'],
    [-0, '0'],
    [0.156, '0.156'],
    [1e-7, '1e-7'],
    [1_700_000_000, '1700000000'],
    [2.5e21, '2.5e+21'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
  ])('writes %d as %s', (value, text) => {
    expect(formatValue(value)).toBe(text);
  });

  it('writes values that read back exactly', () => {
    const values = [
      0.1 + 0.2,
      1 / 3,
      123456.789,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      NaN,
      Infinity,
      -Infinity,
    ];
    const text = writeExposition([
      {
        name: 'x',
        help: 'h',
        type: 'gauge',
        samples: values.map((value, i) => ({ labels: { i: String(i) }, value })),
      },
    ]);
    const families = parseExposition(text);
    values.forEach((value, i) => expect(sampleValue(families, 'x', { i: String(i) })).toBe(value));
  });
});

describe(escapeLabelValue.name, () => {
  it('leaves ordinary text alone', () => {
    expect(escapeLabelValue('TLS 1.3')).toBe('TLS 1.3');
  });
});

describe('the strict exposition parser the specs use', () => {
  it.each([
    ['no final line feed', 'x 1'],
    ['an unterminated label value', 'x{a="1} 1\n'],
    ['a value that is not a number', 'x not_a_number\n'],
    ['an invalid metric name', '1x 1\n'],
    ['an unknown escape', 'x{a="\\q"} 1\n'],
    ['a repeated label', 'x{a="1",a="2"} 1\n'],
    ['a duplicate series', 'x{a="1"} 1\nx{a="1"} 2\n'],
    ['TYPE after samples', 'x 1\n# TYPE x gauge\n'],
    ['a second TYPE', '# TYPE x gauge\n# TYPE x counter\nx 1\n'],
    ['an unknown type', '# TYPE x meter\nx 1\n'],
    ['a family split in two', 'x 1\ny 1\nx{a="b"} 2\n'],
    ['trailing garbage', 'x 1 2 3\n'],
    ['carriage returns', 'x 1\r\n'],
    ['a histogram without a +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
    [
      'a histogram whose buckets decrease',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    ],
    [
      'a histogram whose count is not its +Inf bucket',
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
    ],
    ['a histogram bucket without le', '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n'],
  ])('rejects %s', (_what, text) => {
    expect(() => parseExposition(text)).toThrow(ExpositionParseError);
  });

  it('reads what Prometheus reads: timestamps, a trailing comma, blanks inside braces, comments', () => {
    const families = parseExposition('# a comment\n# TYPE x gauge\nx{ a = "1" , } 1.5e3 1700000000000\n');
    expect(families[0]?.samples[0]).toEqual({
      name: 'x',
      labels: { a: '1' },
      value: 1500,
      timestampMs: 1700000000000,
    });
  });
});
