import { describe, expect, it } from 'vitest';
import { UsageError } from './cli-io';
import {
  canonicalJson,
  formatTestsFile,
  normaliseTest,
  parseTestsFile,
  pathKeys,
  withoutDefaults,
} from './tests-file';

/** A test as a person writes it: only what differs from the defaults. */
function testDoc(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    schedule: { interval_s: 60 },
    locations: ['eu-west'],
    probe: { url: `wss://${name.replace(/\W+/g, '-')}.example.com/ws` },
    ...extra,
  };
}

function problemsOf(text: string): string[] {
  try {
    parseTestsFile(text, 'tests.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe('tests.yaml: invalid tests file, nothing was applied:');
    return [...(error as UsageError).details];
  }
  throw new Error('the file was accepted');
}

describe(parseTestsFile.name, () => {
  it('reads one test per YAML document, normalised by the shared schema', () => {
    const tests = parseTestsFile(
      [
        '# a comment',
        'name: chat',
        'schedule: { interval_s: 60 }',
        'locations: [eu-west]',
        'probe:',
        '  url: wss://chat.example.com/ws',
        '  headers: { Authorization: "Bearer {{ secrets.CHAT_TOKEN }}" }',
        '---',
        'name: feed',
        'schedule: { cron: "*/5 * * * *" }',
        'locations: [us-east]',
        'probe: { url: "ws://feed.example.com" }',
        '---',
        '',
      ].join('\n'),
      'tests.yaml',
    );
    expect(tests.map((t) => t.where)).toEqual(['document 1', 'document 2']);
    expect(tests[0]?.test).toMatchObject({
      name: 'chat',
      enabled: true,
      retry: { attempts: 0, delay_ms: 1000 },
      probe: { timeout_ms: 10_000, headers: { Authorization: 'Bearer {{ secrets.CHAT_TOKEN }}' } },
    });
    expect(tests[0]?.lineOf('probe.headers.Authorization')).toBe(7);
    expect(tests[1]?.lineOf('probe.timeout_ms')).toBe(12);
  });

  it('reads a JSON list as well', () => {
    const tests = parseTestsFile(JSON.stringify([testDoc('a'), testDoc('b')], null, 2), 'tests.json');
    expect(tests.map((t) => [t.where, t.test.name])).toEqual([
      ['item 1', 'a'],
      ['item 2', 'b'],
    ]);
  });

  it('names the document, its line and the field path of every problem, in file order', () => {
    const problems = problemsOf(
      [
        'name: bad',
        'schedule: { interval_s: 0 }',
        'locations: [eu-west]',
        'probe:',
        '  url: http://example.com',
        '---',
        '- name: listed',
        '  schedule: { interval_s: 60 }',
        '  locations: [eu-west]',
        '  probe: { url: "ws://x", timeout_ms: 99999 }',
        '- just text',
        '---',
        'name: [unclosed',
      ].join('\n'),
    );
    expect(problems).toEqual([
      'document 1 (line 2), test "bad": schedule.interval_s: must be at least 1 [min]',
      'document 1 (line 5), test "bad": probe.url: must start with ws:// or wss:// (got http://) [ws_scheme]',
      'document 2, item 1 (line 10), test "listed": probe.timeout_ms: must be at most 30000 [max]',
      'document 2, item 2 (line 11): must be a test (a mapping with name, probe, schedule, locations…)',
      expect.stringMatching(/^document 3 \(line 13\): /),
    ]);
  });

  it('points a missing field at the nearest line that exists', () => {
    expect(problemsOf('name: x\nschedule: { interval_s: 5 }\nprobe:\n  url: ws://a\n')).toEqual([
      'document 1 (line 1), test "x": locations: is required [required]',
    ]);
  });

  it('refuses a name given twice: apply matches tests by name', () => {
    const text = [testDoc('same'), testDoc('other'), testDoc('same')]
      .map((t) => JSON.stringify(t))
      .join('\n---\n');
    expect(problemsOf(text)).toEqual([
      'document 3 (line 5): name: "same" is also the name of document 1; apply matches tests by name [unique]',
    ]);
  });

  it('never echoes a header value it refuses', () => {
    const problems = problemsOf(
      JSON.stringify(testDoc('h', { probe: { url: 'ws://a', headers: { 'X-Key': 42 } } })),
    );
    expect(problems.join('\n')).toContain('probe.headers["X-Key"]');
    expect(problems.join('\n')).not.toContain('42');
  });
});

describe(withoutDefaults.name, () => {
  it('leaves out what equals a default, and gives back the same test when applied', () => {
    const parsed = normaliseTest(
      testDoc('feed', {
        tags: ['prod'],
        retry: { attempts: 2, delay_ms: 1000 },
        probe: { url: 'wss://feed.example.com/ws', ping_mode: 'protocol', timeout_ms: 10_000 },
      }),
    );
    if (!parsed.ok) throw new Error('fixture is invalid');
    const shown = withoutDefaults(parsed.test);
    expect(shown).toEqual({
      name: 'feed',
      tags: ['prod'],
      schedule: { interval_s: 60 },
      locations: ['eu-west'],
      probe: { url: 'wss://feed.example.com/ws', ping_mode: 'protocol' },
      retry: { attempts: 2 },
    });
    expect(Object.keys(shown)).toEqual(['name', 'tags', 'schedule', 'locations', 'probe', 'retry']);
    const again = normaliseTest(shown);
    expect(again.ok && canonicalJson(again.test)).toBe(canonicalJson(parsed.test));
  });

  it('keeps a value that differs from the default, such as a paused test', () => {
    const parsed = normaliseTest(testDoc('paused', { enabled: false }));
    if (!parsed.ok) throw new Error('fixture is invalid');
    expect(withoutDefaults(parsed.test)).toMatchObject({ enabled: false });
  });
});

describe(formatTestsFile.name, () => {
  it.each(['yaml', 'json'] as const)('writes %s that reads back as the same tests', (format) => {
    const input = [
      testDoc('a: with "quotes" and {{ secrets.X }}', { description: 'line one\nline two' }),
      testDoc('b'),
    ];
    const text = formatTestsFile(input, format);
    const tests = parseTestsFile(text, `tests.${format}`);
    expect(tests.map((t) => canonicalJson(t.test))).toEqual(
      input.map((t) => {
        const parsed = normaliseTest(t);
        return parsed.ok ? canonicalJson(parsed.test) : 'invalid';
      }),
    );
  });
});

describe(pathKeys.name, () => {
  it.each([
    ['(root)', []],
    ['name', ['name']],
    ['probe.steps[2].timeout_ms', ['probe', 'steps', 2, 'timeout_ms']],
    ['probe.headers["X-Api-Key"]', ['probe', 'headers', 'X-Api-Key']],
    ['locations[0]', ['locations', 0]],
  ])('%s', (path, keys) => {
    expect(pathKeys(path)).toEqual(keys);
  });
});
