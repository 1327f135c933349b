/**
 * One-dimensional PostgreSQL arrays in the binary format of `array_recv`, built for ingest's array
 * parameters: node-pg sends a Buffer parameter in binary, so PostgreSQL copies each element in instead of
 * parsing text (uuids, floats and timestamps are the bulk of a result's columns), and nothing here turns
 * a number into a string.
 *
 * Layout: ndim (1), has-nulls flag, element type OID, the dimension's length and lower bound (1), then
 * each element as its byte length (-1 for NULL) and its bytes in the type's binary form.
 */

/** Element type OIDs (pg_type). */
export const OID = {
  bool: 16,
  int8: 20,
  int4: 23,
  text: 25,
  json: 114,
  float8: 701,
  timestamptz: 1184,
  uuid: 2950,
} as const;

const HEADER_BYTES = 20;
/** The binary epoch of timestamps: 2000-01-01T00:00:00Z, in Unix milliseconds. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;

/** Writes the elements of one array; {@link finish} returns its bytes. */
class ArrayWriter {
  private readonly out: Buffer;
  private at = HEADER_BYTES;
  private nulls = 0;

  /** `capacity`: the bytes of every element with its length word, at most. */
  constructor(
    private readonly oid: number,
    private readonly length: number,
    capacity: number,
  ) {
    this.out = Buffer.allocUnsafe(HEADER_BYTES + capacity);
  }

  null(): void {
    this.out.writeInt32BE(-1, this.at);
    this.at += 4;
    this.nulls++;
  }

  /** Room for an element of `bytes` bytes, its length written: the offset to write it at. */
  element(bytes: number): number {
    this.out.writeInt32BE(bytes, this.at);
    const start = this.at + 4;
    this.at = start + bytes;
    return start;
  }

  get buffer(): Buffer {
    return this.out;
  }

  finish(): Buffer {
    const out = this.out;
    out.writeInt32BE(1, 0);
    out.writeInt32BE(this.nulls ? 1 : 0, 4);
    out.writeUInt32BE(this.oid, 8);
    out.writeInt32BE(this.length, 12);
    out.writeInt32BE(1, 16);
    return out.subarray(0, this.at);
  }
}

/** An int64 as two 32-bit words: exact for every safe integer, and no BigInt per element. */
function writeInt64(out: Buffer, value: number, at: number): void {
  const high = Math.floor(value / TWO_32);
  out.writeInt32BE(high, at);
  out.writeUInt32BE(value - high * TWO_32, at + 4);
}

/**
 * Milliseconds as an int64 of microseconds. Multiplied as two words: the product itself passes 2^53
 * (doubles stop being exact) for times beyond the year 2285.
 */
function writeMicroseconds(out: Buffer, ms: number, at: number): void {
  const high = Math.floor(ms / TWO_32);
  const low = (ms - high * TWO_32) * 1000; // < 2^42: exact
  const carry = Math.floor(low / TWO_32);
  out.writeInt32BE(high * 1000 + carry, at);
  out.writeUInt32BE(low - carry * TWO_32, at + 4);
}

/** `float8[]`; undefined is NULL. NaN and the infinities go as they are. */
export function float8Array(values: readonly (number | undefined)[]): Buffer {
  const w = new ArrayWriter(OID.float8, values.length, values.length * 12);
  for (const value of values) {
    if (value === undefined) w.null();
    else w.buffer.writeDoubleBE(value, w.element(8));
  }
  return w.finish();
}

/** `int4[]` of integers in range (checked by the caller); undefined is NULL. */
export function int4Array(values: readonly (number | undefined)[]): Buffer {
  const w = new ArrayWriter(OID.int4, values.length, values.length * 8);
  for (const value of values) {
    if (value === undefined) w.null();
    else w.buffer.writeInt32BE(value, w.element(4));
  }
  return w.finish();
}

/** `int8[]` of safe integers. */
export function int8Array(values: readonly number[]): Buffer {
  const w = new ArrayWriter(OID.int8, values.length, values.length * 12);
  for (const value of values) writeInt64(w.buffer, value, w.element(8));
  return w.finish();
}

/** `bool[]`. */
export function boolArray(values: readonly boolean[]): Buffer {
  const w = new ArrayWriter(OID.bool, values.length, values.length * 5);
  for (const value of values) w.buffer[w.element(1)] = value ? 1 : 0;
  return w.finish();
}

/**
 * `timestamptz[]` from Unix milliseconds (microseconds since 2000 in the binary form); undefined is
 * NULL. Fractions of a millisecond are dropped: the columns keep milliseconds.
 */
export function timestamptzArray(valuesMs: readonly (number | undefined)[]): Buffer {
  const w = new ArrayWriter(OID.timestamptz, valuesMs.length, valuesMs.length * 12);
  for (const ms of valuesMs) {
    if (ms === undefined) w.null();
    else writeMicroseconds(w.buffer, Math.trunc(ms) - PG_EPOCH_MS, w.element(8));
  }
  return w.finish();
}

/** Hex digit values by character code; -1 for anything else. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[65 + i] = HEX[97 + i] = 10 + i;

/**
 * `uuid[]` from canonical uuids (8-4-4-4-12 hex digits, either case: the caller checked the form);
 * undefined is NULL. Throws on a character that is not a hex digit, rather than storing a wrong id.
 */
export function uuidArray(values: readonly (string | undefined)[]): Buffer {
  const w = new ArrayWriter(OID.uuid, values.length, values.length * 20);
  const out = w.buffer;
  for (const value of values) {
    if (value === undefined) {
      w.null();
      continue;
    }
    if (value.length !== 36) throw new RangeError(`not a uuid: ${value}`);
    let at = w.element(16);
    for (let i = 0; i < 36; i += 2) {
      if (i === 8 || i === 13 || i === 18 || i === 23) i++;
      const high = HEX[value.charCodeAt(i)] ?? -1;
      const low = HEX[value.charCodeAt(i + 1)] ?? -1;
      if (high < 0 || low < 0) throw new RangeError(`not a uuid: ${value}`);
      out[at++] = (high << 4) | low;
    }
  }
  return w.finish();
}

/** `text[]` (UTF-8); undefined is NULL. */
export function textArray(values: readonly (string | undefined)[]): Buffer {
  let capacity = 0;
  for (const value of values) capacity += 4 + (value === undefined ? 0 : Buffer.byteLength(value));
  const w = new ArrayWriter(OID.text, values.length, capacity);
  for (const value of values) {
    if (value === undefined) w.null();
    else {
      const bytes = Buffer.byteLength(value);
      w.buffer.write(value, w.element(bytes), bytes, 'utf8');
    }
  }
  return w.finish();
}

/** `json[]`: the binary form of a json element is its text, so the documents go in unchanged. */
export function jsonArray(documents: readonly Uint8Array[]): Buffer {
  let capacity = 0;
  for (const document of documents) capacity += 4 + document.length;
  const w = new ArrayWriter(OID.json, documents.length, capacity);
  for (const document of documents) w.buffer.set(document, w.element(document.length));
  return w.finish();
}
