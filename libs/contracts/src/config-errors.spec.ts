import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigValidationError,
  RULE_PARAM,
  formatPath,
  toFieldErrors,
  type ConfigFieldError,
} from './config-errors';

/** The field errors of `schema` for `input`, as parseProbeConfig builds them. */
function fieldErrors(schema: z.ZodType, input: unknown): ConfigFieldError[] {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) throw new Error(`expected errors for ${JSON.stringify(input)}`);
  return toFieldErrors(result.error.issues);
}

describe(formatPath.name, () => {
  it.each([
    { path: [], expected: '(root)' },
    { path: ['url'], expected: 'url' },
    { path: ['tls', 'ca_pem'], expected: 'tls.ca_pem' },
    { path: ['assertions', 2, 'target'], expected: 'assertions[2].target' },
    { path: ['steps', 0, 'assertions', 1, 'target'], expected: 'steps[0].assertions[1].target' },
    { path: ['headers', 'X-Api-Key'], expected: 'headers["X-Api-Key"]' },
    { path: ['headers', 'a"b'], expected: 'headers["a\\"b"]' },
    { path: ['send-message'], expected: '["send-message"]' },
    { path: [Symbol('s')], expected: '["Symbol(s)"]' },
  ])('formats $expected', ({ path, expected }) => {
    expect(formatPath(path)).toBe(expected);
  });
});

describe(toFieldErrors.name, () => {
  it('maps the rule of a custom check from its params', () => {
    const schema = z
      .string()
      .refine((s) => s !== 'x', { message: 'must not be x', params: { [RULE_PARAM]: 'not_x' } });
    expect(fieldErrors(schema, 'x')).toEqual([
      { path: '(root)', rule: 'not_x', message: '(root): must not be x', value: 'x' },
    ]);
  });

  it('names a custom check without a rule "custom"', () => {
    expect(
      fieldErrors(
        z.string().refine((s) => s !== 'x', 'must not be x'),
        'x',
      )[0]?.rule,
    ).toBe('custom');
  });

  it('maps bounds by origin: characters, items, numbers', () => {
    const schema = z.object({ s: z.string().min(2), a: z.array(z.number()).max(1), n: z.number().lt(5) });
    expect(fieldErrors(schema, { s: 'a', a: [1, 2], n: 5 })).toEqual([
      { path: 's', rule: 'min_length', message: 's: must be at least 2 characters long', value: 'a' },
      { path: 'a', rule: 'max_items', message: 'a: must have at most 1 items' },
      { path: 'n', rule: 'max', message: 'n: must be less than 5', value: 5 },
    ]);
  });

  it('maps not_multiple_of', () => {
    expect(fieldErrors(z.object({ n: z.number().multipleOf(5) }), { n: 7 })).toEqual([
      { path: 'n', rule: 'multiple_of', message: 'n: must be a multiple of 5', value: 7 },
    ]);
  });

  it('uses the schema message for a regex format, not "must be a valid regex"', () => {
    const schema = z.object({ id: z.string().regex(/^[a-z]+$/, 'must be lower-case letters') });
    expect(fieldErrors(schema, { id: 'A1' })).toEqual([
      { path: 'id', rule: 'format', message: 'id: must be lower-case letters', value: 'A1' },
    ]);
  });

  it('names other formats', () => {
    expect(fieldErrors(z.object({ mail: z.email() }), { mail: 'nope' })[0]).toMatchObject({
      rule: 'format',
      message: 'mail: must be a valid email',
    });
  });

  it('tells a missing enum field (required) from a wrong one (enum)', () => {
    const schema = z.object({ mode: z.enum(['a', 'b']) });
    expect(fieldErrors(schema, {})).toEqual([
      { path: 'mode', rule: 'required', message: 'mode: is required (one of "a", "b")' },
    ]);
    expect(fieldErrors(schema, { mode: 'c' })).toEqual([
      { path: 'mode', rule: 'enum', message: 'mode: must be one of "a", "b"', value: 'c' },
    ]);
  });

  it('calls a record an object', () => {
    expect(fieldErrors(z.object({ h: z.record(z.string(), z.string()) }), { h: [] })[0]?.message).toBe(
      'h: must be an object',
    );
  });

  describe('unions', () => {
    const stringOrList = z.object({ p: z.union([z.string(), z.array(z.string())]) });

    it('lists the accepted types when no branch fits the type', () => {
      expect(fieldErrors(stringOrList, { p: 1 })).toEqual([
        { path: 'p', rule: 'type', message: 'p: must be a string or an array', value: 1 },
      ]);
    });

    it('reports the errors of the only branch that fits the type', () => {
      expect(fieldErrors(stringOrList, { p: ['a', 2] })).toEqual([
        { path: 'p[1]', rule: 'type', message: 'p[1]: must be a string', value: 2 },
      ]);
    });

    it('falls back to a plain sentence when several branches fit the type', () => {
      const schema = z.union([z.object({ a: z.string() }), z.object({ b: z.number() })]);
      expect(fieldErrors(schema, {})).toEqual([
        { path: '(root)', rule: 'type', message: '(root): does not match any allowed form' },
      ]);
    });

    it('names the discriminator of a discriminated union, with the allowed values', () => {
      const schema = z.object({
        items: z.array(
          z.discriminatedUnion('kind', [
            z.object({ kind: z.literal('a') }),
            z.object({ kind: z.literal('b') }),
          ]),
        ),
      });
      expect(fieldErrors(schema, { items: [{ kind: 'c' }, {}] })).toEqual([
        {
          path: 'items[0].kind',
          rule: 'enum',
          message: 'items[0].kind: must be one of "a", "b"',
          value: 'c',
        },
        { path: 'items[1].kind', rule: 'required', message: 'items[1].kind: is required (one of "a", "b")' },
      ]);
    });
  });

  it('reports the errors inside a map element at the element', () => {
    const errors = fieldErrors(z.object({ m: z.map(z.string(), z.number()) }), { m: new Map([['k', 'v']]) });
    expect(errors).toEqual([{ path: 'm.k', rule: 'type', message: 'm.k: must be a number', value: 'v' }]);
  });

  it('reports each unknown key without its value', () => {
    expect(fieldErrors(z.strictObject({ a: z.string() }).optional(), { a: 'x', b: 'secret', c: 1 })).toEqual([
      { path: 'b', rule: 'unknown_field', message: 'b: is not a known field' },
      { path: 'c', rule: 'unknown_field', message: 'c: is not a known field' },
    ]);
  });

  describe('echoed values', () => {
    it('truncates a long string to 200 characters', () => {
      const [error] = fieldErrors(z.object({ s: z.string().max(3) }), { s: 'y'.repeat(500) });
      expect(error?.value).toBe(`${'y'.repeat(200)}…`);
    });

    it('never echoes objects or arrays', () => {
      const [error] = fieldErrors(z.object({ s: z.string() }), { s: { nested: true } });
      expect(error).not.toHaveProperty('value');
    });

    it.each([
      'headers.Authorization',
      'cookies',
      'basic_auth.password',
      'client.secret',
      'auth.token',
      'tls.ca_pem',
    ])('never echoes a value at %s', (path) => {
      const keys = path.split('.');
      const shape = keys.reduceRight<z.ZodType>((inner, key) => z.object({ [key]: inner }), z.number());
      const input = keys.reduceRight<unknown>((inner, key) => ({ [key]: inner }), 'a-secret');
      const [error] = fieldErrors(shape, input);
      expect(error?.path).toBe(path);
      expect(error).not.toHaveProperty('value');
    });

    it('redacts the credentials of a URL', () => {
      const [error] = fieldErrors(z.object({ u: z.string().max(5) }), { u: 'wss://user:pa55@host/x' });
      expect(error?.value).toBe('wss://***@host/x');
    });
  });
});

describe(ConfigValidationError.name, () => {
  it('is an Error that carries every field error and lists their messages', () => {
    const errors: ConfigFieldError[] = [
      { path: 'url', rule: 'required', message: 'url: is required' },
      { path: 'timeout_ms', rule: 'min', message: 'timeout_ms: must be at least 100', value: 5 },
    ];
    const error = new ConfigValidationError(errors);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ConfigValidationError');
    expect(error.errors).toEqual(errors);
    expect(error.message).toBe('invalid configuration: url: is required; timeout_ms: must be at least 100');
  });
});
