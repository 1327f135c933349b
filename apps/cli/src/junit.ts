/** How one location's run of one test ended, as `wsmon tests run` reports it. */
export type RunOutcome = 'passed' | 'failed' | 'no_agent' | 'timeout';

/** One test × location of `wsmon tests run`: a JUnit test case. */
export interface RunCase {
  readonly testName: string;
  readonly testId: string;
  readonly runId: string;
  readonly location: string;
  readonly outcome: RunOutcome;
  /** The probe's total time; undefined when it did not run. */
  readonly durationMs?: number;
  readonly reason?: string | null;
  readonly cause?: string | null;
  readonly category?: string | null;
  readonly agentId?: string | null;
  readonly resultId?: string;
}

// XML 1.0 forbids most control characters even escaped; a probe's text may hold any of them.
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** Text for an XML attribute or element: the five special characters escaped, invalid ones dropped. */
export function xmlText(text: string): string {
  return text
    .replace(INVALID_XML, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

function failureOf(c: RunCase): string {
  const lines = [
    c.reason ? `reason: ${c.reason}` : undefined,
    c.cause ? `cause: ${c.cause}` : undefined,
    c.category ? `category: ${c.category}` : undefined,
    `location: ${c.location}`,
    c.agentId ? `agent: ${c.agentId}` : undefined,
    `test_id: ${c.testId}`,
    `run_id: ${c.runId}`,
    c.resultId ? `result_id: ${c.resultId}` : undefined,
  ].filter((line): line is string => line !== undefined);
  const body = xmlText(lines.join('\n'));
  switch (c.outcome) {
    case 'failed': {
      const message = [c.reason, c.cause].filter(Boolean).join(': ') || 'the probe failed';
      return `<failure message="${xmlText(message)}" type="${xmlText(c.reason ?? 'failure')}">${body}</failure>`;
    }
    case 'no_agent':
      return `<error message="no agent of the location can run the test" type="no_agent">${body}</error>`;
    case 'timeout':
      return `<error message="no result before the timeout" type="timeout">${body}</error>`;
    case 'passed':
      return '';
  }
}

/**
 * A JUnit XML report, in the dialect Jenkins, GitLab, GitHub and Azure read: one `testsuite` per test,
 * one `testcase` per location (its name), failed probes as `failure` (with the reason and cause), runs
 * that produced no result (no agent, timeout) as `error`.
 */
export function junitReport(cases: readonly RunCase[], startedAt: Date, durationMs: number): string {
  const suites = new Map<string, RunCase[]>();
  for (const c of cases) suites.set(c.testId, [...(suites.get(c.testId) ?? []), c]);
  const count = (list: readonly RunCase[], ...outcomes: RunOutcome[]) =>
    list.filter((c) => outcomes.includes(c.outcome)).length;
  const timestamp = startedAt.toISOString().slice(0, 19);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="wsmon" tests="${cases.length}" failures="${count(cases, 'failed')}" ` +
      `errors="${count(cases, 'no_agent', 'timeout')}" time="${seconds(durationMs)}" timestamp="${timestamp}">`,
  ];
  for (const list of suites.values()) {
    const first = list[0]!;
    const time = list.reduce((sum, c) => sum + (c.durationMs ?? 0), 0);
    out.push(
      `  <testsuite name="${xmlText(first.testName)}" tests="${list.length}" failures="${count(list, 'failed')}" ` +
        `errors="${count(list, 'no_agent', 'timeout')}" skipped="0" time="${seconds(time)}" timestamp="${timestamp}">`,
      '    <properties>',
      `      <property name="test_id" value="${xmlText(first.testId)}"/>`,
      `      <property name="run_id" value="${xmlText(first.runId)}"/>`,
      '    </properties>',
    );
    for (const c of list) {
      const open = `    <testcase name="${xmlText(c.location)}" classname="${xmlText(c.testName)}" time="${seconds(c.durationMs ?? 0)}"`;
      const failure = failureOf(c);
      out.push(failure ? `${open}>\n      ${failure}\n    </testcase>` : `${open}/>`);
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}
