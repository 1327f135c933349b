import type { z } from 'zod';

/**
 * One violated rule of a configuration, in the shape every API returns it:
 * REST 400 bodies, gRPC INVALID_ARGUMENT field violations and CLI usage errors.
 */
export interface ConfigFieldError {
  /** Dotted path of the field, with array indexes in brackets: `assertions[2].target`. */
  readonly path: string;
  /** Machine-readable name of the rule: `required`, `max`, `enum`, `ws_scheme`, `regex`... */
  readonly rule: string;
  /** Human-readable sentence naming the field and the rule. */
  readonly message: string;
  /** The rejected value, omitted where it may be secret or is too large to echo. */
  readonly value?: unknown;
}

/** Thrown by the `assert*` helpers; carries every field error at once. */
export class ConfigValidationError extends Error {
  readonly errors: readonly ConfigFieldError[];

  constructor(errors: readonly ConfigFieldError[]) {
    super(`invalid configuration: ${errors.map((e) => e.message).join('; ')}`);
    this.name = 'ConfigValidationError';
    this.errors = errors;
  }
}

export type ParseOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly ConfigFieldError[] };

/** The rule names of custom checks travel in the issue's params under this key. */
export const RULE_PARAM = 'rule';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `['assertions', 2, 'target']` becomes `assertions[2].target`; odd keys are quoted. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && IDENTIFIER.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out || '(root)';
}

/**
 * Fields whose values are never echoed back in an error: they carry credentials (the profiles' too:
 * `stomp.passcode`, `socket_io.auth`, `graphql.init_payload`).
 */
const SECRET_PATH =
  /(^|\.)(headers|cookies|basic_auth|password|passcode|auth|init_payload|secret|token)(\.|\[|$)/i;
/**
 * PEM fields are never echoed either: they are large, and a value rejected as "not a certificate" is
 * often a private key pasted into the wrong field.
 */
const PEM_PATH = /(^|\.)[a-z_]*pem$/i;
/** `scheme://user:password@` in a URL. */
const URL_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]*@/i;
const MAX_ECHOED_VALUE_CHARS = 200;

/** A field whose value is never shown, in an error or anywhere else: a credential or a certificate. */
export const isSecretPath = (path: string): boolean => SECRET_PATH.test(path) || PEM_PATH.test(path);

function echoableValue(path: string, input: unknown): unknown {
  if (isSecretPath(path)) return undefined;
  if (input === undefined || typeof input === 'object') return undefined;
  if (typeof input === 'string') {
    const redacted = input.replace(URL_USERINFO, '$1***@');
    return redacted.length > MAX_ECHOED_VALUE_CHARS
      ? `${redacted.slice(0, MAX_ECHOED_VALUE_CHARS)}…`
      : redacted;
  }
  return input;
}

function describeBound(origin: string, bound: number | bigint, inclusive: boolean, side: 'min' | 'max') {
  const cmp = side === 'min' ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than';
  switch (origin) {
    case 'string':
      return { rule: `${side}_length`, text: `must be ${cmp} ${bound} characters long` };
    case 'array':
    case 'set':
      return { rule: `${side}_items`, text: `must have ${cmp} ${bound} items` };
    default:
      return { rule: side, text: `must be ${cmp} ${bound}` };
  }
}

/** `["a", "b", "c"]` becomes `a, b or c`. */
function either(words: readonly string[]): string {
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)}` : (words[0] ?? '');
}

/** How a type is named to users: a zod `record` is a JSON object. */
function typeName(expected: string): string {
  const name = expected === 'record' ? 'object' : expected;
  return `${article(name)} ${name}`;
}

/** The one issue of a union branch that failed only because the value had the wrong type. */
function typeMismatch(branch: readonly z.core.$ZodIssue[]): z.core.$ZodIssueInvalidType | undefined {
  const [only] = branch;
  return branch.length === 1 && only?.code === 'invalid_type' && only.path.length === 0 ? only : undefined;
}

/**
 * Turns zod issues into field errors with stable rule names and plain sentences.
 * `prefix` is the path of the union whose branch issues are being reported.
 */
export function toFieldErrors(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PropertyKey[] = [],
): ConfigFieldError[] {
  const errors: ConfigFieldError[] = [];
  for (const issue of issues) {
    const fullPath = [...prefix, ...issue.path];
    const basePath = formatPath(fullPath);
    const input = (issue as { input?: unknown }).input;
    const push = (path: string, rule: string, text: string, value: unknown = input) => {
      const echoed = echoableValue(path, value);
      errors.push({
        path,
        rule,
        message: `${path}: ${text}`,
        ...(echoed === undefined ? {} : { value: echoed }),
      });
    };
    switch (issue.code) {
      case 'invalid_type':
        if (input === undefined) push(basePath, 'required', 'is required');
        else if (issue.expected === 'int') push(basePath, 'integer', 'must be an integer');
        else push(basePath, 'type', `must be ${typeName(issue.expected)}`);
        break;
      case 'too_small': {
        const d = describeBound(issue.origin, issue.minimum, issue.inclusive ?? true, 'min');
        push(basePath, d.rule, d.text);
        break;
      }
      case 'too_big': {
        const d = describeBound(issue.origin, issue.maximum, issue.inclusive ?? true, 'max');
        push(basePath, d.rule, d.text);
        break;
      }
      case 'invalid_value': {
        const oneOf = `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
        // A missing enum field is missing like any other: `required`, as for a missing string.
        if (input === undefined) push(basePath, 'required', `is required (${oneOf})`);
        else push(basePath, 'enum', `must be ${oneOf}`);
        break;
      }
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          push(formatPath([...fullPath, key]), 'unknown_field', 'is not a known field', undefined);
        }
        break;
      case 'invalid_format':
        // A bare regex format only says "did not match"; the schema's message says what was expected.
        push(
          basePath,
          'format',
          issue.format === 'regex' ? issue.message : `must be a valid ${issue.format}`,
        );
        break;
      case 'not_multiple_of':
        push(basePath, 'multiple_of', `must be a multiple of ${issue.divisor}`);
        break;
      case 'invalid_key':
        push(basePath, 'key', issue.issues[0]?.message ?? 'has an invalid key', undefined);
        break;
      case 'invalid_element':
        errors.push(...toFieldErrors(issue.issues, [...fullPath, issue.key as PropertyKey]));
        break;
      case 'invalid_union': {
        if (issue.discriminator !== undefined) {
          // A discriminated union: the path already ends at the discriminator (`assertions[0].type`).
          const tag = isRecord(input) ? input[issue.discriminator] : undefined;
          const options = 'options' in issue ? (issue.options ?? []) : [];
          const allowed = options.map((v) => JSON.stringify(v)).join(', ');
          const oneOf = allowed ? `one of ${allowed}` : 'a known type';
          if (tag === undefined) push(basePath, 'required', `is required (${oneOf})`, undefined);
          else push(basePath, 'enum', `must be ${oneOf}`, tag);
          break;
        }
        // A plain union: when exactly one branch got past the type check, its errors are the useful ones.
        const deeper = issue.errors.filter((branch) => branch.length > 0 && !typeMismatch(branch));
        const [only] = deeper;
        if (deeper.length === 1 && only) {
          errors.push(...toFieldErrors(only, fullPath));
          break;
        }
        const expected = issue.errors.map(typeMismatch);
        push(
          basePath,
          'type',
          expected.every((e) => e !== undefined)
            ? `must be ${either(expected.map((e) => typeName(e.expected)))}`
            : 'does not match any allowed form',
        );
        break;
      }
      case 'custom': {
        const rule = (issue.params?.[RULE_PARAM] as string | undefined) ?? 'custom';
        push(basePath, rule, issue.message);
        break;
      }
      default: {
        // An issue code newer than this mapping: keep zod's own code and message.
        const other = issue as { code: string; message: string };
        push(basePath, other.code, other.message);
      }
    }
  }
  return errors;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}
