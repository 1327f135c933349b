import { UsageError } from './cli-io';

/**
 * The compact grammars of `--assert` and `--step`. They only reshape text into the JSON form of the
 * shared schema; whether the values are allowed is for `parseProbeConfig` to say, so the CLI and
 * the APIs reject the same things with the same field errors.
 */

/** Grammar of `--assert`, as printed in help and usage errors. */
export const ASSERT_GRAMMAR = '<type>[.<property>] <operator> <target>';

/** Assertion types whose target is a number. */
const NUMERIC_TARGET_TYPES = new Set(['response_time', 'close_code', 'certificate_days_remaining']);
const NUMBER = /^-?\d+(\.\d+)?$/;

/** A number where the text is one, else the text itself (the schema then names the field and the rule). */
export function numberOrText(text: string): number | string {
  return NUMBER.test(text) ? Number(text) : text;
}

/** `"quoted"` (a JSON string) keeps spaces and allows an empty target; anything else is taken as is. */
function unquote(text: string): string {
  if (!text.startsWith('"')) return text;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'string' ? parsed : text;
  } catch {
    return text;
  }
}

const ASSERTION = /^\s*(\S+)\s+(\S+)\s+(\S[\s\S]*?)\s*$/;
/** `json_path.$.a exists`: the one operator without a target. */
const TARGETLESS = /^\s*(json_path\.\S+)\s+(exists)\s*$/;

/** A json_path target: JSON where the text is JSON (`5`, `true`, `null`, `"5"`), else the text. */
function jsonOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * `response_time.connect less_than 500`, `header.x-served-by is edge-1`, `received_message matches ^pong`:
 * the first word is the type and an optional property after the first dot, the second the operator,
 * the rest the target. `n` (1-based) numbers the flag in errors; the text itself is never echoed.
 */
export function parseAssertion(text: string, n: number): Record<string, unknown> {
  const targetless = TARGETLESS.exec(text);
  if (targetless)
    return { type: 'json_path', property: targetless[1]!.slice('json_path.'.length), operator: 'exists' };
  const match = ASSERTION.exec(text);
  if (!match) {
    throw new UsageError(
      `--assert #${n}: expected "${ASSERT_GRAMMAR}", for example "response_time.connect less_than 500"`,
    );
  }
  const [, subject = '', operator = '', rawTarget = ''] = match;
  const dot = subject.indexOf('.');
  const type = dot === -1 ? subject : subject.slice(0, dot);
  const target = type === 'json_path' ? jsonOrText(rawTarget) : unquote(rawTarget);
  return {
    type,
    ...(dot === -1 ? {} : { property: subject.slice(dot + 1) }),
    operator,
    target: NUMERIC_TARGET_TYPES.has(type) && typeof target === 'string' ? numberOrText(target) : target,
  };
}

/** Grammar of `--step` shorthands, as printed in help and usage errors. */
export const STEP_SHORTHANDS = [
  ['connect[=<within_ms>]', 'open the connection (fail unless open within <within_ms>)'],
  ['send=<text>', 'send a text message (everything after the first "=")'],
  ['receive[=<substring>]', 'await the next message (which must contain <substring>)'],
  ['ping', 'send a protocol ping and await its pong'],
  ['hold=<duration_ms>[:<min_messages>]', 'keep the connection open (and require messages)'],
  ['disconnect[=<expected_close_code>]', 'close with 1000 (and require that close code back)'],
] as const;

type Shorthand = (value: string | undefined, n: number) => Record<string, unknown>;

function noValue(type: string): Shorthand {
  return (value, n) => {
    if (value !== undefined) {
      throw new UsageError(`--step #${n}: "${type}" takes no value; use a JSON step for more options`);
    }
    return { type };
  };
}

function requiredValue(grammar: string): (value: string | undefined, n: number) => string {
  return (value, n) => {
    if (value === undefined) throw new UsageError(`--step #${n}: expected ${grammar}`);
    return value;
  };
}

const sendText = requiredValue('send=<text>');
const holdSpec = requiredValue('hold=<duration_ms>[:<min_messages>]');

const SHORTHANDS: Record<string, Shorthand> = {
  connect: (value) => ({
    type: 'connect',
    ...(value === undefined ? {} : { within_ms: numberOrText(value) }),
  }),
  send: (value, n) => ({ type: 'send', message: sendText(value, n) }),
  receive: (value) => ({ type: 'receive', ...(value ? { expect_message: value } : {}) }),
  ping: noValue('ping'),
  hold: (value, n) => {
    const spec = holdSpec(value, n);
    const colon = spec.indexOf(':');
    if (colon === -1) return { type: 'hold', duration_ms: numberOrText(spec) };
    return {
      type: 'hold',
      duration_ms: numberOrText(spec.slice(0, colon)),
      min_messages: numberOrText(spec.slice(colon + 1)),
    };
  },
  disconnect: (value) => ({
    type: 'disconnect',
    ...(value === undefined ? {} : { expected_close_code: numberOrText(value) }),
  }),
};

/**
 * Where JSON.parse failed, without its excerpt of the input: the text may hold a token (a send step's
 * message, a configuration file's headers).
 */
export function jsonErrorWhere(error: unknown): string {
  const where = /at position \d+(?: \(line \d+ column \d+\))?/.exec((error as Error | null)?.message ?? '');
  return where ? ` (${where[0]})` : '';
}

/**
 * One `--step`: a JSON object in the schema's form (`{"type":"receive","timeout_ms":500}`) or a
 * shorthand from {@link STEP_SHORTHANDS}. `n` (1-based) numbers the flag in errors.
 */
export function parseStep(text: string, n: number): Record<string, unknown> {
  if (text.trimStart().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new UsageError(`--step #${n}: not valid JSON${jsonErrorWhere(error)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new UsageError(`--step #${n}: a JSON step must be an object`);
    }
    return parsed as Record<string, unknown>;
  }
  const eq = text.indexOf('=');
  const type = eq === -1 ? text : text.slice(0, eq);
  const shorthand = Object.hasOwn(SHORTHANDS, type) ? SHORTHANDS[type] : undefined;
  if (!shorthand) {
    const known = STEP_SHORTHANDS.map(([grammar]) => grammar).join(', ');
    throw new UsageError(
      `--step #${n}: unknown step ${JSON.stringify(type)}; expected a JSON object or ${known}`,
    );
  }
  return shorthand(eq === -1 ? undefined : text.slice(eq + 1), n);
}
