import {
  parseJsonPath,
  selectJsonPath,
  type Assertion,
  type AssertionResult,
  type JsonPathSegment,
  type MessageAssertion,
  type StringOperator,
} from '@wsmon/contracts';

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
  exists: 'to exist',
  equals: 'to equal',
};

/** Regexes (and JSON paths) are compiled once per probe definition, not once per run. */
export class RegexCache {
  private readonly cache = new Map<string, RegExp>();
  private readonly paths = new Map<string, JsonPathSegment[]>();
  get(pattern: string): RegExp {
    let regex = this.cache.get(pattern);
    if (!regex) {
      regex = new RegExp(pattern);
      this.cache.set(pattern, regex);
    }
    return regex;
  }
  /** The segments of a path the schema has validated. */
  path(path: string): JsonPathSegment[] {
    let segments = this.paths.get(path);
    if (!segments) {
      const parsed = parseJsonPath(path);
      if (!parsed.ok) throw new Error(`invalid JSON path ${path}: ${parsed.problem}`);
      segments = parsed.segments;
      this.paths.set(path, segments);
    }
    return segments;
  }
}

/** Messages longer than this are matched on their start only: bounds regex work on huge frames. */
const MAX_MATCHED_CHARS = 1 << 20;
const MAX_SHOWN_CHARS = 200;

function show(value: string | number | boolean | null): string {
  if (value === null) return 'nothing';
  if (typeof value !== 'string') return String(value);
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
  assertion: {
    type: AssertionResult['type'];
    operator: string;
    target: string | number | boolean | null;
    property?: string;
  },
  actual: string | number | null,
  passed: boolean,
  label: string,
  unit = '',
): AssertionResult {
  const words = OPERATOR_WORDS[assertion.operator] ?? assertion.operator;
  const expected = assertion.operator === 'exists' ? words : `${words} ${show(assertion.target)}${unit}`;
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
    case 'json_path':
      return evaluateMessageAssertion(assertion, subject.message, regexes);
  }
}

export function evaluateMessageAssertion(
  assertion: MessageAssertion,
  message: string | null,
  regexes: RegexCache,
  step?: number,
): AssertionResult {
  let evaluated: AssertionResult;
  if (assertion.type === 'json_path') {
    evaluated = evaluateJsonPath(assertion, message, regexes);
  } else {
    const passed = message !== null && compareString(assertion.operator, message, assertion.target, regexes);
    evaluated = result(assertion, message, passed, 'received message');
  }
  return step === undefined ? evaluated : { ...evaluated, step };
}

type JsonPathAssertion = Extract<MessageAssertion, { type: 'json_path' }>;

/** A number, or a string holding one in decimal or `0x` hex (JSON-RPC quantities are hex strings). */
export function numericValue(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string' || value.trim() === '') return null;
  const n = /^0x[0-9a-f]+$/i.test(value) ? Number.parseInt(value.slice(2), 16) : Number(value);
  return Number.isFinite(n) ? n : null;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

function evaluateJsonPath(
  assertion: JsonPathAssertion,
  message: string | null,
  regexes: RegexCache,
): AssertionResult {
  const target = assertion.target ?? null;
  const label = `JSON ${assertion.property}`;
  const shown = { ...assertion, target };
  if (message === null) return result(shown, null, false, label);
  let document: unknown;
  try {
    document = JSON.parse(message);
  } catch {
    return { ...result(shown, null, false, label), message: `${label}: the message is not JSON` };
  }
  const selected = selectJsonPath(document, regexes.path(assertion.property));
  if (!selected.found) return result(shown, null, false, label);
  const value = selected.value;
  const actual = typeof value === 'string' || typeof value === 'number' ? value : JSON.stringify(value);
  let passed: boolean;
  switch (assertion.operator) {
    case 'exists':
      passed = true;
      break;
    case 'equals':
      passed = deepEqual(value, target);
      break;
    case 'matches':
      passed = regexes.get(String(target)).test(typeof value === 'string' ? value : JSON.stringify(value));
      break;
    case 'less_than':
    case 'greater_than': {
      const n = numericValue(value);
      passed =
        n !== null &&
        typeof target === 'number' &&
        (assertion.operator === 'less_than' ? n < target : n > target);
      break;
    }
  }
  return result(shown, actual, passed, label);
}
