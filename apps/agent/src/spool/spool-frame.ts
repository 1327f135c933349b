import { crc32 } from 'node:zlib';

/**
 * One record on disk, little-endian:
 *
 * | offset | size | field                                                        |
 * | ------ | ---- | ------------------------------------------------------------ |
 * | 0      | 4    | CRC-32 (IEEE) of bytes 4 .. 16 + length: length, sequence, payload |
 * | 4      | 4    | length of the payload in bytes                               |
 * | 8      | 8    | sequence number (unsigned; below 2^53)                       |
 * | 16     | n    | payload: the record as UTF-8 JSON                            |
 *
 * The checksum covers the length and the sequence too, so a damaged header is caught like a damaged payload.
 */
export const FRAME_HEADER_BYTES = 16;

const TWO_POW_32 = 2 ** 32;
/** The high word of Number.MAX_SAFE_INTEGER: a larger one is garbage, whatever its checksum says. */
const MAX_SEQUENCE_HIGH = 0x1fffff;

export interface DecodedFrame {
  readonly sequence: number;
  /** Offset of the payload in the buffer. */
  readonly payloadStart: number;
  /** Offset just past the frame in the buffer. */
  readonly end: number;
}

/** A frame whose bytes are all there but do not check out (checksum, or an impossible header). */
export const INVALID = 'invalid';
/** The buffer ends before the frame does: read more, or, at the end of the file, a torn write. */
export const INCOMPLETE = 'incomplete';

export function encodeFrame(sequence: number, record: unknown): Buffer {
  const json = JSON.stringify(record) as string | undefined;
  if (json === undefined) throw new TypeError('result spool: a record must be a JSON-serialisable value');
  const length = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.writeUInt32LE(length, 4);
  frame.writeUInt32LE(sequence >>> 0, 8);
  frame.writeUInt32LE(Math.floor(sequence / TWO_POW_32), 12);
  frame.write(json, FRAME_HEADER_BYTES, 'utf8');
  frame.writeUInt32LE(crc32(frame.subarray(4)), 0);
  return frame;
}

/** Decodes the frame at `buffer[offset]`, looking no further than `limit`. */
export function decodeFrame(
  buffer: Buffer,
  offset: number,
  limit = buffer.length,
): DecodedFrame | typeof INVALID | typeof INCOMPLETE {
  if (limit - offset < FRAME_HEADER_BYTES) return INCOMPLETE;
  const high = buffer.readUInt32LE(offset + 12);
  if (high > MAX_SEQUENCE_HIGH) return INVALID;
  const end = offset + FRAME_HEADER_BYTES + buffer.readUInt32LE(offset + 4);
  if (end > limit) return INCOMPLETE;
  if (crc32(buffer.subarray(offset + 4, end)) !== buffer.readUInt32LE(offset)) return INVALID;
  const sequence = high * TWO_POW_32 + buffer.readUInt32LE(offset + 8);
  return { sequence, payloadStart: offset + FRAME_HEADER_BYTES, end };
}

/** Bytes needed to hold the whole frame at `offset`, as far as its header tells (at least the header). */
export function frameBytesHint(buffer: Buffer, offset: number): number {
  if (buffer.length - offset < FRAME_HEADER_BYTES) return FRAME_HEADER_BYTES;
  return FRAME_HEADER_BYTES + buffer.readUInt32LE(offset + 4);
}

export function parsePayload(buffer: Buffer, frame: DecodedFrame): unknown {
  return JSON.parse(buffer.toString('utf8', frame.payloadStart, frame.end));
}

export interface ScannedFrames {
  /** Sequence of the last valid frame (`first - 1` if none). */
  readonly last: number;
  /** Bytes from the start of the buffer up to the end of the last valid frame. */
  readonly validBytes: number;
  /** Offsets of every `stride`-th frame, from the first. */
  readonly offsets: number[];
}

/**
 * Walks the frames of a segment from its start while each is valid and carries the next sequence number
 * (`first`, `first + 1`, …): within a segment sequences are contiguous, so a frame out of sequence is as
 * wrong as one with a bad checksum.
 */
export function scanFrames(buffer: Buffer, first: number, stride: number): ScannedFrames {
  const offsets: number[] = [];
  let offset = 0;
  let expected = first;
  for (;;) {
    const frame = decodeFrame(buffer, offset);
    if (typeof frame === 'string' || frame.sequence !== expected) break;
    if ((expected - first) % stride === 0) offsets.push(offset);
    offset = frame.end;
    expected++;
  }
  return { last: expected - 1, validBytes: offset, offsets };
}

/**
 * After a bad frame at `from`, looks for valid frames further on (byte by byte: a damaged length hides where
 * the next frame starts) with a sequence above `after`, and returns the highest such sequence. `undefined`
 * means nothing valid follows: a torn write at the end of a file, not damage in its middle.
 */
export function lastSequenceBeyond(buffer: Buffer, from: number, after: number): number | undefined {
  let highest: number | undefined;
  let offset = from + 1;
  while (offset + FRAME_HEADER_BYTES <= buffer.length) {
    const frame = decodeFrame(buffer, offset);
    if (typeof frame === 'string' || frame.sequence <= (highest ?? after)) {
      offset++;
      continue;
    }
    highest = frame.sequence;
    offset = frame.end;
  }
  return highest;
}
