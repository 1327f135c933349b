import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  FRAME_HEADER_BYTES,
  INCOMPLETE,
  INVALID,
  lastSequenceBeyond,
  parsePayload,
  scanFrames,
} from './spool-frame';

function frames(first: number, count: number): Buffer {
  return Buffer.concat(
    Array.from({ length: count }, (_, i) => encodeFrame(first + i, { id: `r${first + i}`, slot: i })),
  );
}

describe(encodeFrame.name, () => {
  it('round-trips the sequence and the record, large sequences too', () => {
    for (const sequence of [1, 2 ** 32 - 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const record = { id: 'é✓', nested: { list: [1, null, 'x'] } };
      const frame = encodeFrame(sequence, record);
      const decoded = decodeFrame(frame, 0);

      expect(decoded).toMatchObject({ sequence, payloadStart: FRAME_HEADER_BYTES, end: frame.length });
      expect(parsePayload(frame, decoded as Exclude<typeof decoded, string>)).toEqual(record);
    }
  });

  it('refuses what JSON cannot carry', () => {
    expect(() => encodeFrame(1, undefined)).toThrow(TypeError);
  });
});

describe(decodeFrame.name, () => {
  it('notices a change of any byte, header included', () => {
    const frame = encodeFrame(42, { id: 'x', slot: '2025-01-01T00:00:00Z' });
    for (let offset = 0; offset < frame.length; offset++) {
      const damaged = Buffer.from(frame);
      damaged[offset] = damaged[offset]! ^ 0x01;
      expect([INVALID, INCOMPLETE], `byte ${offset}`).toContain(decodeFrame(damaged, 0));
    }
  });

  it('asks for more bytes while the frame is cut short', () => {
    const frame = encodeFrame(1, { id: 'x' });
    expect(decodeFrame(frame, 0, FRAME_HEADER_BYTES - 1)).toBe(INCOMPLETE);
    expect(decodeFrame(frame, 0, frame.length - 1)).toBe(INCOMPLETE);
  });
});

describe(scanFrames.name, () => {
  it('walks contiguous sequences, indexes every stride-th, and stops at the first frame out of place', () => {
    const good = frames(10, 9);
    const scan = scanFrames(Buffer.concat([good, encodeFrame(25, {}), frames(20, 2)]), 10, 4);

    expect(scan).toMatchObject({ last: 18, validBytes: good.length });
    expect(scan.offsets).toHaveLength(3);
    expect(decodeFrame(good, scan.offsets[2]!)).toMatchObject({ sequence: 18 });
  });
});

describe(lastSequenceBeyond.name, () => {
  it('finds valid frames after damage, and none after a torn write', () => {
    const head = frames(1, 3);
    const damaged = Buffer.concat([head, Buffer.from('garbage'), frames(5, 4)]);
    expect(lastSequenceBeyond(damaged, head.length, 3)).toBe(8);

    const torn = encodeFrame(4, { id: 'torn' });
    expect(lastSequenceBeyond(Buffer.concat([head, torn.subarray(0, 20)]), head.length, 3)).toBeUndefined();
    // Old frames (not above the last good sequence) do not count: stale blocks after a power cut.
    expect(lastSequenceBeyond(Buffer.concat([head, Buffer.from('xx'), frames(1, 2)]), head.length, 3)).toBe(
      undefined,
    );
  });
});
