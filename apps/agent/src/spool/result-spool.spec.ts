import { randomUUID } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyProbeTimings, type ProbeTimings } from '@wsmon/contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryLockedError } from '@wsmon/runtime';
import { ResultSpool, type ResultSpoolOptions, type SpoolIncident } from './result-spool';
import { encodeFrame, FRAME_HEADER_BYTES } from './spool-frame';

/** The shape the agent spools: one probe run of one test, for one scheduled slot. */
interface AgentResult {
  readonly id: string;
  readonly test_id: string;
  readonly slot: string;
  readonly success: boolean;
  readonly timings: ProbeTimings;
  readonly note: string;
}

let counter = 0;
function agentResult(overrides: Partial<AgentResult> = {}): AgentResult {
  counter++;
  return {
    id: randomUUID(),
    test_id: `test-${counter % 7}`,
    slot: new Date(Date.UTC(2025, 0, 1, 0, 0, counter)).toISOString(),
    success: counter % 5 !== 0,
    timings: { ...emptyProbeTimings(), open_ms: counter % 100, total_ms: (counter % 100) + 3 },
    note: '',
    ...overrides,
  };
}

const SEGMENT_BYTES = 16 * 1024;

let dir: string;
const opened = new Set<ResultSpool<AgentResult>>();
let incidents: SpoolIncident[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wsmon-spool-'));
  incidents = [];
});

afterEach(async () => {
  for (const spool of opened) await spool.close();
  opened.clear();
  rmSync(dir, { recursive: true, force: true });
});

async function openSpool(options: Partial<ResultSpoolOptions> = {}): Promise<ResultSpool<AgentResult>> {
  const spool = await ResultSpool.open<AgentResult>(dir, {
    maxBytes: 1024 * 1024,
    segmentBytes: SEGMENT_BYTES,
    syncIntervalMs: 5,
    onIncident: (incident) => incidents.push(incident),
    ...options,
  });
  opened.add(spool);
  return spool;
}

async function reopen(spool: ResultSpool<AgentResult>, options?: Partial<ResultSpoolOptions>) {
  await spool.close();
  opened.delete(spool);
  return openSpool(options);
}

/** Appends `count` records concurrently, then makes them durable (readable). */
async function appendMany(spool: ResultSpool<AgentResult>, count: number, note = '') {
  const records = Array.from({ length: count }, () => agentResult({ note }));
  const sequences = await Promise.all(records.map((record) => spool.append(record)));
  await spool.sync();
  return sequences.map((sequence, index) => ({ sequence, record: records[index]! }));
}

async function readAll(spool: ResultSpool<AgentResult>, afterSequence = 0) {
  return spool.read(afterSequence, 1_000_000);
}

function segmentFiles(): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.seg'))
    .sort();
}

function segmentPath(index: number): string {
  return join(dir, segmentFiles().at(index)!);
}

/** Byte offset of the `n`-th record (from 0) of a segment file. */
function recordOffset(path: string, n: number): number {
  const bytes = readFileSync(path);
  let offset = 0;
  for (let i = 0; i < n; i++) offset += FRAME_HEADER_BYTES + bytes.readUInt32LE(offset + 4);
  return offset;
}

function flipByte(path: string, offset: number): void {
  const bytes = readFileSync(path);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  writeFileSync(path, bytes);
}

describe(ResultSpool.name, () => {
  it('gives increasing sequence numbers in append order and reads the records back in that order', async () => {
    const spool = await openSpool();
    const appended = await appendMany(spool, 300);

    expect(appended.map((entry) => entry.sequence)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(await readAll(spool)).toEqual(appended);
    expect(segmentFiles().length).toBeGreaterThan(1);
    expect(spool.stats()).toMatchObject({ depth: 300, lastSequence: 300, durableSequence: 300 });
  });

  it('hands out only records already fsynced, and says when more are readable', async () => {
    const spool = await openSpool({ syncIntervalMs: 60_000 });
    const waiting = spool.waitForRecords(0);
    const sequence = await spool.append(agentResult());

    expect(await spool.read(0, 10)).toEqual([]);
    expect(spool.stats()).toMatchObject({ lastSequence: 1, durableSequence: 0, depth: 1 });
    await spool.sync();
    await waiting;
    expect((await spool.read(0, 10)).map((entry) => entry.sequence)).toEqual([sequence]);
  });

  it('makes appends durable by group commit within syncIntervalMs', async () => {
    const spool = await openSpool({ syncIntervalMs: 20 });
    await spool.append(agentResult());
    await spool.append(agentResult());
    await spool.waitForRecords(1);
    expect(spool.stats().durableSequence).toBe(2);
  });

  it('reads windows of any start and size, across segments', async () => {
    const spool = await openSpool();
    // Small records: well over the index stride (64) per segment, so windows start between index entries.
    const appended = await appendMany(spool, 1500);
    expect(segmentFiles().length).toBeGreaterThan(2);

    for (const [after, limit] of [
      [0, 1],
      [0, 64],
      [63, 2],
      [100, 250],
      [777, 1],
      [1400, 500],
      [1499, 10],
      [1500, 10],
      [5000, 10],
    ] as const) {
      const window = await spool.read(after, limit);
      expect(window).toEqual(appended.slice(after, after + limit));
    }
    // Streaming batch after batch, the way the session does.
    const streamed: number[] = [];
    for (
      let after = 0, batch = await spool.read(0, 97);
      batch.length > 0;
      batch = await spool.read(after, 97)
    ) {
      streamed.push(...batch.map((entry) => entry.sequence));
      after = batch.at(-1)!.sequence;
    }
    expect(streamed).toEqual(appended.map((entry) => entry.sequence));
  });

  it('acknowledging advances the watermark and deletes the segments that hold nothing newer', async () => {
    const spool = await openSpool();
    await appendMany(spool, 600);
    const before = segmentFiles();
    const firstOfSecond = Number(before[1]!.slice(0, 20));

    await spool.acknowledge(firstOfSecond); // all of the first segment and one record of the second

    expect(segmentFiles()).toEqual(before.slice(1));
    expect(spool.stats()).toMatchObject({ acknowledgedSequence: firstOfSecond, depth: 600 - firstOfSecond });
    expect((await spool.read(0, 1))[0]?.sequence).toBe(firstOfSecond + 1);
    await spool.acknowledge(3); // less than before: no effect
    expect(spool.stats().acknowledgedSequence).toBe(firstOfSecond);
    await expect(spool.acknowledge(601)).rejects.toThrow(RangeError);
  });

  it('after a restart keeps the unacknowledged, forgets the acknowledged and continues the sequence', async () => {
    let spool = await openSpool();
    const appended = await appendMany(spool, 400);
    await spool.acknowledge(250);

    spool = await reopen(spool);

    expect(await readAll(spool)).toEqual(appended.slice(250));
    expect(spool.stats()).toMatchObject({ acknowledgedSequence: 250, depth: 150, lastSequence: 400 });
    expect(await spool.append(agentResult())).toBe(401);
  });

  it('never reuses a sequence number, even when everything was acknowledged and deleted', async () => {
    let spool = await openSpool();
    await appendMany(spool, 100);
    await spool.acknowledge(100);
    expect(segmentFiles()).toEqual([]);

    spool = await reopen(spool);

    expect(spool.stats()).toMatchObject({ depth: 0, bytes: 0, lastSequence: 100, acknowledgedSequence: 100 });
    expect(await spool.append(agentResult())).toBe(101);
  });

  it('past maxBytes drops the oldest records, counts them, and keeps the count across restarts', async () => {
    const maxBytes = 4 * SEGMENT_BYTES;
    let spool = await openSpool({ maxBytes });
    const note = 'x'.repeat(400);
    const appended = await appendMany(spool, 400, note); // about 10 segments' worth

    const { droppedTotal, depth, bytes } = spool.stats();
    expect(bytes).toBeLessThanOrEqual(maxBytes);
    expect(droppedTotal).toBeGreaterThan(0);
    expect(droppedTotal + depth).toBe(400);
    const kept = await readAll(spool);
    expect(kept).toEqual(appended.slice(droppedTotal)); // the newest survive, the oldest went

    spool = await reopen(spool, { maxBytes });
    expect(spool.stats()).toMatchObject({ droppedTotal, depth });
    await appendMany(spool, 100, note);
    expect(spool.stats().bytes).toBeLessThanOrEqual(maxBytes);
    expect(spool.stats().droppedTotal + spool.stats().depth).toBe(500);

    // A smaller bound takes effect on open.
    spool = await reopen(spool, { maxBytes: maxBytes / 2 });
    expect(spool.stats().bytes).toBeLessThanOrEqual(maxBytes / 2);
    expect(spool.stats().droppedTotal + spool.stats().depth).toBe(500);
    expect((await readAll(spool)).at(-1)?.sequence).toBe(500);
  });

  it('only counts records as dropped that were not acknowledged', async () => {
    const spool = await openSpool({ maxBytes: 4 * SEGMENT_BYTES });
    const note = 'x'.repeat(400);
    await appendMany(spool, 30, note);
    await spool.acknowledge(30);
    await appendMany(spool, 300, note);

    expect(spool.stats().droppedTotal + spool.stats().depth).toBe(300);
  });

  it('cuts off a torn write at the end of the newest segment', async () => {
    let spool = await openSpool();
    const appended = await appendMany(spool, 50);
    await spool.close();
    opened.delete(spool);
    const newest = segmentPath(-1);
    const torn = encodeFrame(51, agentResult());
    appendFileSync(newest, torn.subarray(0, torn.length - 7)); // a write cut short
    const sizeBefore = readFileSync(newest).length;

    spool = await openSpool();

    expect(await readAll(spool)).toEqual(appended);
    expect(incidents).toEqual([
      { kind: 'torn-tail', segment: newest, offset: sizeBefore - (torn.length - 7), bytes: torn.length - 7 },
    ]);
    expect(spool.stats().corruptedTotal).toBe(0);
    const next = agentResult();
    expect(await spool.append(next)).toBe(51);
    await spool.sync();
    expect(await spool.read(50, 10)).toEqual([{ sequence: 51, record: next }]);
  });

  it('treats garbage at the end of the newest segment as a torn write', async () => {
    let spool = await openSpool();
    const appended = await appendMany(spool, 20);
    await spool.close();
    opened.delete(spool);
    appendFileSync(segmentPath(-1), Buffer.from('\0\0\0\0garbage that is not a frame\n'));

    spool = await openSpool();

    expect(await readAll(spool)).toEqual(appended);
    expect(incidents.map((incident) => incident.kind)).toEqual(['torn-tail']);
  });

  it('stops at a damaged record in an older segment: quarantines the rest of that segment and counts it', async () => {
    let spool = await openSpool();
    const appended = await appendMany(spool, 300);
    await spool.close();
    opened.delete(spool);
    const damaged = segmentPath(0);
    const next = Number(segmentFiles()[1]!.slice(0, 20));
    const offset = recordOffset(damaged, 10);
    flipByte(damaged, offset + FRAME_HEADER_BYTES + 5); // in the payload: only the checksum tells

    spool = await openSpool();

    const lost = next - 11;
    expect(incidents).toEqual([
      {
        kind: 'corruption',
        segment: damaged,
        offset,
        sequence: 11,
        lostRecords: lost,
        quarantine: `${damaged}.${offset}.corrupt`,
      },
    ]);
    expect(existsSync(`${damaged}.${offset}.corrupt`)).toBe(true);
    expect(await readAll(spool)).toEqual([...appended.slice(0, 10), ...appended.slice(next - 1)]);
    expect(spool.stats()).toMatchObject({ corruptedTotal: lost, depth: 300 - lost });

    spool = await reopen(spool); // repaired once, counted once
    expect(incidents).toHaveLength(1);
    expect(spool.stats().corruptedTotal).toBe(lost);
    expect(await spool.append(agentResult())).toBe(301);
  });

  it('tells damage in the middle of the newest segment from a torn write', async () => {
    let spool = await openSpool();
    const appended = await appendMany(spool, 30);
    await spool.close();
    opened.delete(spool);
    const newest = segmentPath(-1);
    const first = Number(segmentFiles().at(-1)!.slice(0, 20));
    const offset = recordOffset(newest, 3);
    flipByte(newest, offset + 4); // the length field: the frames after it cannot be found by walking

    spool = await openSpool();

    expect(incidents).toMatchObject([
      { kind: 'corruption', sequence: first + 3, lostRecords: 30 - first - 2 },
    ]);
    expect(await readAll(spool)).toEqual(appended.slice(0, first + 2));
    // The lost sequence numbers stay used.
    expect(await spool.append(agentResult())).toBe(31);
  });

  it('meeting a damaged record while reading returns what precedes it, then goes on after that segment', async () => {
    const spool = await openSpool();
    const appended = await appendMany(spool, 300);
    const damaged = segmentPath(0);
    const next = Number(segmentFiles()[1]!.slice(0, 20));
    flipByte(damaged, recordOffset(damaged, 20) + FRAME_HEADER_BYTES + 1);

    expect(await spool.read(0, 1000)).toEqual(appended.slice(0, 20));
    expect(incidents).toMatchObject([{ kind: 'corruption', sequence: 21, lostRecords: next - 21 }]);
    expect(await spool.read(20, 1000)).toEqual(appended.slice(next - 1));
    expect(spool.stats()).toMatchObject({ corruptedTotal: next - 21, depth: 300 - (next - 21) });
  });

  it('serialises concurrent appends while reads and acknowledgements run', async () => {
    const spool = await openSpool({ syncIntervalMs: 1 });
    const received: number[] = [];
    let after = 0;
    const appending = Promise.all(
      Array.from({ length: 20 }, async (_, round) => {
        await new Promise((done) => setTimeout(done, round));
        return Promise.all(Array.from({ length: 50 }, () => spool.append(agentResult())));
      }),
    );
    while (received.length < 1000) {
      await spool.waitForRecords(after);
      const batch = await spool.read(after, 64);
      received.push(...batch.map((entry) => entry.sequence));
      after = batch.at(-1)?.sequence ?? after;
      await spool.acknowledge(after);
    }
    const sequences = (await appending).flat();

    expect(new Set(sequences).size).toBe(1000);
    expect(received).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(spool.stats()).toMatchObject({ depth: 0, acknowledgedSequence: 1000 });
  });

  it('refuses a second opening of its directory', async () => {
    await openSpool();
    const error = await openSpool().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DirectoryLockedError);
    expect((error as DirectoryLockedError).ownerPid).toBe(process.pid);
  });

  it('takes over the lock left by a process that is gone, and removes it on close', async () => {
    const lockPath = join(dir, 'spool.lock');
    const deadPid = 2 ** 30; // above any pid_max: no such process
    writeFileSync(lockPath, JSON.stringify({ pid: deadPid, hostname: 'gone', since: '', token: 'stale' }));

    const spool = await openSpool();

    expect(JSON.parse(readFileSync(lockPath, 'utf8'))).toMatchObject({ pid: process.pid });
    await spool.close();
    expect(existsSync(lockPath)).toBe(false);
  });

  it('rejects what it cannot keep, without spending a sequence number', async () => {
    const spool = await openSpool();
    await expect(spool.append(agentResult({ note: 'x'.repeat(SEGMENT_BYTES) }))).rejects.toThrow(RangeError);
    await expect(spool.append(undefined as unknown as AgentResult)).rejects.toThrow(TypeError);
    expect(await spool.append(agentResult())).toBe(1);
    await expect(spool.read(-1, 10)).rejects.toThrow(RangeError);
    await expect(spool.read(0, 0)).rejects.toThrow(RangeError);
  });

  it('refuses options that cannot work', async () => {
    await expect(ResultSpool.open(dir, { maxBytes: 100 })).rejects.toThrow(RangeError);
    await expect(ResultSpool.open(dir, { maxBytes: 1024 * 1024, segmentBytes: 600 * 1024 })).rejects.toThrow(
      /segmentBytes/,
    );
    await expect(ResultSpool.open(dir, { maxBytes: 1024 * 1024, syncIntervalMs: -1 })).rejects.toThrow(
      /syncIntervalMs/,
    );
  });

  it('refuses a state file it cannot read rather than guess', async () => {
    const spool = await openSpool();
    await appendMany(spool, 3);
    await spool.acknowledge(1);
    await spool.close();
    opened.delete(spool);
    writeFileSync(join(dir, 'spool-state.json'), '{"format":1,');

    await expect(openSpool()).rejects.toThrow(/spool-state\.json/);
  });

  it('after close, writes what was appended and refuses further calls', async () => {
    let spool = await openSpool({ syncIntervalMs: 60_000 });
    const waiting = spool.waitForRecords(5);
    const appending = Promise.all([spool.append(agentResult()), spool.append(agentResult())]);
    await spool.close();

    expect(await appending).toEqual([1, 2]);
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(spool.append(agentResult())).rejects.toThrow(/closed/);
    await expect(spool.read(0, 1)).rejects.toThrow(/closed/);
    await spool.close();

    opened.delete(spool);
    spool = await openSpool();
    expect((await readAll(spool)).map((entry) => entry.sequence)).toEqual([1, 2]);
  });
});
