import type { MessageAssertion } from '@wsmon/contracts';
import { describe, expect, it } from 'vitest';
import { evaluateMessageAssertion, numericValue, RegexCache } from './assertions';

const MESSAGE = JSON.stringify({
  op: 'pong',
  seq: 41,
  ok: true,
  gone: null,
  block: { number: '0x1b4', tags: ['a', 'b'] },
  'x-id': 'abc',
});

function check(
  assertion: Omit<Extract<MessageAssertion, { type: 'json_path' }>, 'type'>,
  message: string | null = MESSAGE,
) {
  return evaluateMessageAssertion({ type: 'json_path', ...assertion }, message, new RegexCache());
}

describe(evaluateMessageAssertion.name, () => {
  describe('json_path', () => {
    it.each([
      [{ property: '$.op', operator: 'exists' }, true, 'pong'],
      [{ property: '$.gone', operator: 'exists' }, true, 'null'],
      [{ property: '$.missing', operator: 'exists' }, false, null],
      [{ property: '$.op', operator: 'equals', target: 'pong' }, true, 'pong'],
      [{ property: '$.seq', operator: 'equals', target: 41 }, true, 41],
      [{ property: '$.seq', operator: 'equals', target: '41' }, false, 41],
      [{ property: '$.ok', operator: 'equals', target: true }, true, 'true'],
      [{ property: '$.gone', operator: 'equals', target: null }, true, 'null'],
      [{ property: '$.block.tags[1]', operator: 'equals', target: 'b' }, true, 'b'],
      [{ property: "$['x-id']", operator: 'matches', target: '^ab' }, true, 'abc'],
      [
        { property: '$.block', operator: 'matches', target: '"tags"' },
        true,
        '{"number":"0x1b4","tags":["a","b"]}',
      ],
      [{ property: '$.seq', operator: 'less_than', target: 42 }, true, 41],
      [{ property: '$.seq', operator: 'greater_than', target: 41 }, false, 41],
      [{ property: '$.block.number', operator: 'greater_than', target: 400 }, true, '0x1b4'],
      [{ property: '$.op', operator: 'less_than', target: 1 }, false, 'pong'],
    ] as const)('%j passes: %s', (assertion, passed, actual) => {
      const result = check(assertion);
      expect(result).toMatchObject({ type: 'json_path', property: assertion.property, passed, actual });
    });

    it('says what it compared, in words', () => {
      expect(check({ property: '$.seq', operator: 'less_than', target: 10 }).message).toBe(
        'JSON $.seq: actual 41 versus expected less than 10',
      );
      expect(check({ property: '$.missing', operator: 'exists' }).message).toBe(
        'JSON $.missing: actual nothing to check versus expected to exist',
      );
    });

    it('fails on a message that is not JSON, and on no message', () => {
      expect(check({ property: '$.a', operator: 'exists' }, 'pong')).toMatchObject({
        passed: false,
        message: 'JSON $.a: the message is not JSON',
      });
      expect(check({ property: '$.a', operator: 'exists' }, null).passed).toBe(false);
    });
  });

  it.each([
    [5, 5],
    ['0x10', 16],
    ['12.5', 12.5],
    ['', null],
    ['abc', null],
    [true, null],
  ])('reads %j as the number %j', (value, n) => {
    expect(numericValue(value)).toBe(n);
  });
});
