import type { Assertion, AssertionResult, MessageAssertion, StringOperator } from '@wsmon/contracts';

/** What the assertions of a probe look at, gathered once the scenario has run. */
export interface AssertionSubject {
  readonly connectMs: number | null;
  readonly roundTripMs: number | null;
  readonly totalMs: number;
  readonly message: string | null;
  /** Upgrade response headers, lower-cased names, raw values. */
  readonly headers: Readonly<Record<string, string>> | null;
  readonly closeCode: number | null;
  readonly subprotocol: string | null;
  readonly certificateDaysRemaining: number | null;
}

const OPERATOR_WORDS: Record<string, string> = {
  less_than: 'less than',
  greater_than: 'greater than',
  contains: 'to contain',
  does_not_contain: 'not to contain',
  is: 'to be',
  is_not: 'not to be',
  matches: 'to match',
  does_not_match: 'not to match',
};

/** Regexes are compiled once per probe definition, not once per run. */
export class RegexCache {
  private readonly cache = new Map<string, RegExp>();
  get(pattern: string): RegExp {
    let regex = this.cache.get(pattern);
    if (!regex) {
      regex = new RegExp(pattern);
      this.cache.set(pattern, regex);
    }
    return regex;
  }
}

/** Messages longer than this are matched on their start only: bounds regex work on huge frames. */
const MAX_MATCHED_CHARS = 1 << 20;
const MAX_SHOWN_CHARS = 200;

function show(value: string | number | null): string {
  if (value === null) return 'nothing';
  if (typeof value === 'number') return String(value);
  const cut = value.length > MAX_SHOWN_CHARS ? `${value.slice(0, MAX_SHOWN_CHARS)}…` : value;
  return JSON.stringify(cut);
}

export function compareString(
  operator: StringOperator,
  actual: string,
  target: string,
  regexes: RegexCache,
): boolean {
  const subject = actual.length > MAX_MATCHED_CHARS ? actual.slice(0, MAX_MATCHED_CHARS) : actual;
  switch (operator) {
    case 'contains':
      return subject.includes(target);
    case 'does_not_contain':
      return !subject.includes(target);
    case 'is':
      return actual === target;
    case 'is_not':
      return actual !== target;
    case 'matches':
      return regexes.get(target).test(subject);
    case 'does_not_match':
      return !regexes.get(target).test(subject);
  }
}

function result(
  assertion: { type: AssertionResult['type']; operator: string; target: string | number; property?: string },
  actual: string | number | null,
  passed: boolean,
  label: string,
  unit = '',
): AssertionResult {
  const expected = `${OPERATOR_WORDS[assertion.operator] ?? assertion.operator} ${show(assertion.target)}${unit}`;
  const got = actual === null ? 'nothing to check' : `${show(actual)}${unit}`;
  return {
    type: assertion.type,
    operator: assertion.operator,
    ...(assertion.property === undefined ? {} : { property: assertion.property }),
    target: assertion.target,
    actual,
    passed,
    message: `${label}: actual ${got} versus expected ${expected}`,
  };
}

/** Evaluates one top-level assertion; a missing actual value (no message, no TLS) never passes. */
export function evaluateAssertion(
  assertion: Assertion,
  subject: AssertionSubject,
  regexes: RegexCache,
): AssertionResult {
  switch (assertion.type) {
    case 'response_time': {
      const actual =
        assertion.property === 'connect'
          ? subject.connectMs
          : assertion.property === 'round_trip'
            ? subject.roundTripMs
            : subject.totalMs;
      const passed = actual !== null && actual < assertion.target;
      return result(assertion, actual, passed, `response time (${assertion.property})`, ' ms');
    }
    case 'received_message':
      return evaluateMessageAssertion(assertion, subject.message, regexes);
    case 'header': {
      const actual = subject.headers?.[assertion.property.toLowerCase()] ?? null;
      const passed = actual !== null && compareString(assertion.operator, actual, assertion.target, regexes);
      return result(assertion, actual, passed, `header ${assertion.property}`);
    }
    case 'close_code': {
      const actual = subject.closeCode;
      const equal = actual === assertion.target;
      const passed = actual !== null && (assertion.operator === 'is' ? equal : !equal);
      return result(assertion, actual, passed, 'close code');
    }
    case 'subprotocol': {
      const actual = subject.subprotocol;
      const equal = actual === assertion.target;
      const passed = assertion.operator === 'is' ? equal : !equal;
      return result(assertion, actual, passed, 'negotiated subprotocol');
    }
    case 'certificate_days_remaining': {
      const actual = subject.certificateDaysRemaining;
      const passed = actual !== null && actual > assertion.target;
      return result(assertion, actual, passed, 'certificate days remaining', ' days');
    }
  }
}

export function evaluateMessageAssertion(
  assertion: MessageAssertion,
  message: string | null,
  regexes: RegexCache,
  step?: number,
): AssertionResult {
  const passed = message !== null && compareString(assertion.operator, message, assertion.target, regexes);
  const evaluated = result(assertion, message, passed, 'received message');
  return step === undefined ? evaluated : { ...evaluated, step };
}
