import { DOMParser, type Document } from '@xmldom/xmldom';
import { describe, expect, it } from 'vitest';
import { junitReport, xmlText, type RunCase } from './junit';

const base = { testId: 't-1', runId: 'r-1', testName: 'chat <gateway> & "feed"' };

const cases: RunCase[] = [
  { ...base, location: 'eu-west', outcome: 'passed', durationMs: 45.2, agentId: 'a-1', resultId: 'res-1' },
  {
    ...base,
    location: 'us-east',
    outcome: 'failed',
    durationMs: 1200,
    reason: 'ws_open_failed',
    cause: 'connection_refused',
    category: 'network',
  },
  { ...base, testId: 't-2', runId: 'r-2', testName: 'prices', location: 'ap-south', outcome: 'no_agent' },
  { ...base, testId: 't-2', runId: 'r-2', testName: 'prices', location: 'eu-west', outcome: 'timeout' },
];

function parse(xml: string): Document {
  return new DOMParser({
    onError: (level, message) => {
      throw new Error(`${level}: ${message}`);
    },
  }).parseFromString(xml, 'text/xml');
}

describe(junitReport.name, () => {
  it('writes well-formed XML: one suite per test, one case per location, failures and errors', () => {
    const doc = parse(junitReport(cases, new Date('2025-11-21T08:00:00Z'), 2500));
    const root = doc.documentElement!;
    expect(root.tagName).toBe('testsuites');
    expect([root.getAttribute('tests'), root.getAttribute('failures'), root.getAttribute('errors')]).toEqual([
      '4',
      '1',
      '2',
    ]);
    expect(root.getAttribute('time')).toBe('2.500');
    const suites = Array.from(doc.getElementsByTagName('testsuite'));
    expect(suites.map((s) => s.getAttribute('name'))).toEqual(['chat <gateway> & "feed"', 'prices']);
    const testcases = Array.from(doc.getElementsByTagName('testcase'));
    expect(testcases.map((c) => [c.getAttribute('classname'), c.getAttribute('name')])).toEqual([
      ['chat <gateway> & "feed"', 'eu-west'],
      ['chat <gateway> & "feed"', 'us-east'],
      ['prices', 'ap-south'],
      ['prices', 'eu-west'],
    ]);
    const [failure] = Array.from(doc.getElementsByTagName('failure'));
    expect(failure?.getAttribute('message')).toBe('ws_open_failed: connection_refused');
    expect(failure?.getAttribute('type')).toBe('ws_open_failed');
    expect(failure?.textContent).toContain('category: network');
    expect(Array.from(doc.getElementsByTagName('error')).map((e) => e.getAttribute('type'))).toEqual([
      'no_agent',
      'timeout',
    ]);
    expect(testcases[0]?.getAttribute('time')).toBe('0.045');
  });
});

describe(xmlText.name, () => {
  it('escapes the special characters and drops those XML cannot carry', () => {
    expect(xmlText(`a<b>&"c"'\u0000\u001b`)).toBe('a&lt;b&gt;&amp;&quot;c&quot;&apos;');
    expect(() => parse(`<x a="${xmlText('\u0007"<&')}">${xmlText('\u0008]]>')}</x>`)).not.toThrow();
  });
});
