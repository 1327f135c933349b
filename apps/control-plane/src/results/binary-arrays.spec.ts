import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../database/test-database.spec-helper';
import {
  boolArray,
  float8Array,
  int4Array,
  int8Array,
  jsonArray,
  textArray,
  timestamptzArray,
  uuidArray,
} from './binary-arrays';

// Each array goes to the server as a binary parameter and comes back as text, as PostgreSQL reads it.
describe.each(BACKENDS)('binary array parameters on %s', (backend) => {
  let database: TestDatabase | undefined;
  let client: Client;

  beforeAll(async () => {
    database = await openTestDatabase(backend, 'arrays');
    client = new Client({ connectionString: database.url });
    await client.connect();
    await client.query(`SET TIME ZONE 'UTC'`);
  }, 60_000);

  afterAll(async () => {
    await client?.end();
    await database?.close();
  });

  /** The elements as PostgreSQL sees them: text, or null. */
  async function elements(parameter: Buffer, type: string): Promise<(string | null)[]> {
    const { rows } = await client.query<{ e: string | null }>(
      `SELECT e::text AS e FROM unnest($1::${type}[]) WITH ORDINALITY AS u(e, i) ORDER BY i`,
      [parameter],
    );
    return rows.map((r) => r.e);
  }

  it('sends uuids of either case, and NULL', async () => {
    const upper = 'A0B1C2D3-E4F5-4a6b-8c7d-9E8F7A6B5C4D';
    expect(
      await elements(uuidArray([upper, undefined, '00000000-0000-0000-0000-000000000000']), 'uuid'),
    ).toEqual([upper.toLowerCase(), null, '00000000-0000-0000-0000-000000000000']);
  });

  it('refuses a uuid with a character that is not a hex digit', () => {
    expect(() => uuidArray(['g0b1c2d3-e4f5-4a6b-8c7d-9e8f7a6b5c4d'])).toThrow(RangeError);
    expect(() => uuidArray(['a0b1c2d3'])).toThrow(RangeError);
  });

  it('sends floats exactly, with NaN, the infinities, negative zero and NULL', async () => {
    const values = [0.1, 1234.5678, -0, Number.NaN, Infinity, -Infinity, undefined, Number.MAX_VALUE];
    expect(await elements(float8Array(values), 'float8')).toEqual([
      '0.1',
      '1234.5678',
      '-0',
      'NaN',
      'Infinity',
      '-Infinity',
      null,
      '1.7976931348623157e+308',
    ]);
  });

  it('sends int4, int8 over the whole safe range, and booleans', async () => {
    expect(await elements(int4Array([0, -1, 2_147_483_647, -2_147_483_648, undefined]), 'int4')).toEqual([
      '0',
      '-1',
      '2147483647',
      '-2147483648',
      null,
    ]);
    const int8 = [0, 1, -1, 4_294_967_296, -4_294_967_297, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
    expect(await elements(int8Array(int8), 'int8')).toEqual(int8.map(String));
    expect(await elements(boolArray([true, false]), 'bool')).toEqual(['true', 'false']);
  });

  it('sends timestamps to the millisecond, before and after 2000, and NULL', async () => {
    const times = [
      Date.UTC(2026, 10, 21, 10, 15, 30, 123),
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2000, 0, 1),
      -62_135_596_800_000, // 0001-01-01
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2026, 0, 1) + 0.75, // a fraction of a millisecond is dropped
      undefined,
    ];
    expect(await elements(timestamptzArray(times), 'timestamptz')).toEqual([
      '2026-11-21 10:15:30.123+00',
      '1999-12-31 23:59:59.999+00',
      '2000-01-01 00:00:00+00',
      '0001-01-01 00:00:00+00',
      '9999-12-31 23:59:59.999+00',
      '2026-01-01 00:00:00+00',
      null,
    ]);
  });

  it('sends text in UTF-8 with quotes, backslashes, braces and commas as they are, and NULL', async () => {
    const texts = ['timeout', 'say "hi", {ok} \\ done', 'ünïcødé ✓ 🚀', '', undefined];
    expect(await elements(textArray(texts), 'text')).toEqual([...texts.slice(0, 4), null]);
  });

  it('sends json documents byte for byte, and lets PostgreSQL refuse one that is not JSON', async () => {
    const documents = ['{"a": [1, 2], "b": "ü"}', '{}'].map((d) => Buffer.from(d));
    expect(await elements(jsonArray(documents), 'json')).toEqual(['{"a": [1, 2], "b": "ü"}', '{}']);
    await expect(elements(jsonArray([Buffer.from('{"a": ')]), 'json')).rejects.toThrow(/json/i);
  });

  it('sends empty arrays', async () => {
    expect(await elements(uuidArray([]), 'uuid')).toEqual([]);
    expect(await elements(jsonArray([]), 'json')).toEqual([]);
  });
});
