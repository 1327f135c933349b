import { describe, expect, it } from 'vitest';
import { UsageError } from './cli-io';
import { numberOrText, parseAssertion, parseStep } from './probe-shorthand';

describe('parseAssertion', () => {
  it.each([
    [
      'response_time.connect less_than 500',
      { type: 'response_time', property: 'connect', operator: 'less_than', target: 500 },
    ],
    [
      'header.x-served-by is edge-1',
      { type: 'header', property: 'x-served-by', operator: 'is', target: 'edge-1' },
    ],
    ['received_message matches ^pong', { type: 'received_message', operator: 'matches', target: '^pong' }],
    ['close_code is 1000', { type: 'close_code', operator: 'is', target: 1000 }],
    ['subprotocol is chat', { type: 'subprotocol', operator: 'is', target: 'chat' }],
    [
      'certificate_days_remaining greater_than 14',
      { type: 'certificate_days_remaining', operator: 'greater_than', target: 14 },
    ],
  ])('%s', (text, expected) => {
    expect(parseAssertion(text, 1)).toEqual(expected);
  });

  it('takes the rest of the text as the target, spaces included', () => {
    expect(parseAssertion('received_message contains hello  world ', 1)).toEqual({
      type: 'received_message',
      operator: 'contains',
      target: 'hello  world',
    });
  });

  it('reads a double-quoted target as a JSON string: surrounding spaces, empty strings', () => {
    expect(parseAssertion('received_message is " padded "', 1).target).toBe(' padded ');
    expect(parseAssertion('subprotocol is ""', 1).target).toBe('');
    expect(parseAssertion('received_message contains "unterminated', 1).target).toBe('"unterminated');
  });

  it('splits the property at the first dot only', () => {
    expect(parseAssertion('header.x.dotted is a', 1)).toMatchObject({ type: 'header', property: 'x.dotted' });
  });

  it('keeps numeric-looking targets of string assertions as text', () => {
    expect(parseAssertion('received_message is 42', 1).target).toBe('42');
    expect(parseAssertion('header.x-n is 7', 1).target).toBe('7');
  });

  it('leaves a non-numeric target of a numeric assertion as text, for the schema to reject', () => {
    expect(parseAssertion('response_time.total less_than soon', 1).target).toBe('soon');
  });

  it('passes unknown types and operators through unchanged, for the schema to reject', () => {
    expect(parseAssertion('latency below 5', 1)).toEqual({ type: 'latency', operator: 'below', target: '5' });
  });

  it.each(['', 'close_code', 'close_code is', '   close_code   is   '])(
    'rejects %j with the grammar',
    (text) => {
      expect(() => parseAssertion(text, 3)).toThrow(UsageError);
      expect(() => parseAssertion(text, 3)).toThrow(
        /^--assert #3: expected "<type>\[\.<property>\] <operator> <target>"/,
      );
    },
  );
});

describe('parseStep', () => {
  it.each([
    ['connect', { type: 'connect' }],
    ['connect=250', { type: 'connect', within_ms: 250 }],
    ['send=hello', { type: 'send', message: 'hello' }],
    ['send={"op":"sub","a":"b=c"}', { type: 'send', message: '{"op":"sub","a":"b=c"}' }],
    ['send=', { type: 'send', message: '' }],
    ['receive', { type: 'receive' }],
    ['receive=', { type: 'receive' }],
    ['receive=pong', { type: 'receive', expect_message: 'pong' }],
    ['ping', { type: 'ping' }],
    ['hold=1500', { type: 'hold', duration_ms: 1500 }],
    ['hold=1500:3', { type: 'hold', duration_ms: 1500, min_messages: 3 }],
    ['disconnect', { type: 'disconnect' }],
    ['disconnect=1000', { type: 'disconnect', expected_close_code: 1000 }],
  ])('shorthand %s', (text, expected) => {
    expect(parseStep(text, 1)).toEqual(expected);
  });

  it('takes a JSON object as the schema form, unchanged', () => {
    expect(parseStep('{"type":"receive","timeout_ms":500,"skip_non_matching":true}', 1)).toEqual({
      type: 'receive',
      timeout_ms: 500,
      skip_non_matching: true,
    });
  });

  it('leaves non-numeric numbers as text, for the schema to reject', () => {
    expect(parseStep('hold=abc:x', 1)).toEqual({ type: 'hold', duration_ms: 'abc', min_messages: 'x' });
    expect(parseStep('connect=soon', 1)).toEqual({ type: 'connect', within_ms: 'soon' });
  });

  it.each([
    ['wait=5', /^--step #2: unknown step "wait"; expected a JSON object or connect/],
    ['send', /^--step #2: expected send=<text>$/],
    ['hold', /^--step #2: expected hold=<duration_ms>\[:<min_messages>\]$/],
    ['ping=abc', /^--step #2: "ping" takes no value/],
    ['[1]', /unknown step/],
    ['{"type":', /^--step #2: not valid JSON/],
    ['{}x', /^--step #2: not valid JSON \(at position 2/],
    ['toString', /unknown step "toString"/],
    ['constructor=1', /unknown step "constructor"/],
  ])('rejects %j', (text, message) => {
    expect(() => parseStep(text, 2)).toThrow(UsageError);
    expect(() => parseStep(text, 2)).toThrow(message);
  });

  it('never echoes the text of invalid JSON, which may carry a token', () => {
    for (const text of ['{"type":"send","message":"Bearer s3cr3t-token"', '{"message":"s3cr3t-token" x}']) {
      expect(() => parseStep(text, 1)).toThrow(/not valid JSON/);
      expect(() => parseStep(text, 1)).not.toThrow(/s3cr3t/);
    }
  });
});

describe('numberOrText', () => {
  it.each([
    ['10', 10],
    ['-5', -5],
    ['2.5', 2.5],
    ['1e3', '1e3'],
    ['', ''],
    [' 5', ' 5'],
    ['0x10', '0x10'],
  ])('%j', (text, expected) => {
    expect(numberOrText(text)).toBe(expected);
  });
});
