import { mkdir, open, readdir, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireDirectoryLock, type DirectoryLock } from '@wsmon/runtime';
import {
  decodeFrame,
  encodeFrame,
  frameBytesHint,
  INCOMPLETE,
  INVALID,
  lastSequenceBeyond,
  parsePayload,
  scanFrames,
} from './spool-frame';

/** A record as read back from the spool, with the sequence number the spool gave it. */
export interface SpooledResult<T = unknown> {
  readonly sequence: number;
  readonly record: T;
}

export interface SpoolStats {
  /** Records spooled and neither acknowledged nor dropped nor lost. */
  readonly depth: number;
  /** Size of the segment files. */
  readonly bytes: number;
  /** Unacknowledged records dropped to keep the spool within `maxBytes`, since the spool was created. */
  readonly droppedTotal: number;
  /** Records lost to damaged segment files (see {@link SpoolIncident}), since the spool was created. */
  readonly corruptedTotal: number;
  /** The highest sequence number written (0: none yet). Never goes down, across restarts too. */
  readonly lastSequence: number;
  /** The highest sequence number known to be on stable storage (fsync'd); `read` returns no further. */
  readonly durableSequence: number;
  readonly acknowledgedSequence: number;
}

export interface ResultSpoolOptions {
  /** Bound of the segment files' total size: past it the oldest segments are dropped (`droppedTotal`). */
  readonly maxBytes: number;
  /**
   * A segment is closed when the next record would take it past this size; it is also the largest record
   * accepted. Default: `maxBytes / 8`, at most 1 MiB; at most `maxBytes / 2`.
   */
  readonly segmentBytes?: number;
  /** Group commit: written records are fsync'd within this many milliseconds (default 100; 0: at once). */
  readonly syncIntervalMs?: number;
  /** Told of each damage found and repaired, on open or while reading: worth a log line. */
  readonly onIncident?: (incident: SpoolIncident) => void;
}

/**
 * Damage found in a segment file. A `torn-tail` is an incomplete last write (kill -9 or power loss in the
 * middle of a write): cut off, nothing that `append` resolved is lost with it after a kill -9. A `corruption`
 * is a bad record followed by more data (disk damage): the records from the bad one to the segment's end are
 * lost (counted in `corruptedTotal`); those bytes are kept in `quarantine` for inspection.
 */
export type SpoolIncident =
  | { readonly kind: 'torn-tail'; readonly segment: string; readonly offset: number; readonly bytes: number }
  | {
      readonly kind: 'corruption';
      readonly segment: string;
      readonly offset: number;
      /** The sequence number the bad record should have had. */
      readonly sequence: number;
      readonly lostRecords: number;
      readonly quarantine: string;
    };

interface Segment {
  /** Sequence of its first record; also its file name. */
  readonly first: number;
  /** Sequence of its last record (`first - 1` while empty). Sequences within a segment are contiguous. */
  last: number;
  /** Bytes of complete records: where the next one is written. */
  bytes: number;
  readonly path: string;
  /** Byte offsets of records `first`, `first + INDEX_STRIDE`, `first + 2 * INDEX_STRIDE`, … */
  readonly offsets: number[];
}

interface PendingAppend {
  readonly sequence: number;
  readonly frame: Buffer;
  readonly resolve: (sequence: number) => void;
  readonly reject: (error: unknown) => void;
}

interface Waiter {
  readonly afterSequence: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** The small state that is not in the segments, replaced atomically (write aside, fsync, rename, fsync dir). */
interface PersistedState {
  readonly format: typeof FORMAT;
  readonly acknowledgedSequence: number;
  /** Every record up to this sequence is acknowledged or dropped: gone, or to be deleted. */
  readonly discardedSequence: number;
  /** At least the highest sequence ever written, so none is reused after its segment is deleted. */
  readonly highWaterSequence: number;
  readonly droppedTotal: number;
  readonly corruptedTotal: number;
}

const FORMAT = 1;
const STATE_FILE = 'spool-state.json';
const LOCK_FILE = 'spool.lock';
const SEGMENT_NAME = /^(\d{20})\.seg$/;
const MIN_SEGMENT_BYTES = 256;
const MAX_DEFAULT_SEGMENT_BYTES = 1024 * 1024;
const DEFAULT_SYNC_INTERVAL_MS = 100;
const INDEX_STRIDE = 64;
const READ_CHUNK_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * The agent's durable, bounded, append-only queue of results awaiting the control plane's acknowledgement.
 *
 * Records go to segment files (`<first sequence, 20 digits>.seg`) of length-prefixed, checksummed JSON
 * frames (see `spool-frame.ts`), one segment appended at a time. `append` resolves once the record is
 * written to the file (it survives kill -9 of the agent); records are fsync'd by group commit within
 * `syncIntervalMs` (they survive power loss), and only fsync'd records are handed out by `read`: a sequence
 * number the control plane has seen is on stable storage, so it is never reused, even after a power cut.
 *
 * Appends are serialised in call order (sequence order is append order); `read` and `acknowledge` may be
 * called at any time. One process per directory (a lock file); a second `open` fails with
 * `DirectoryLockedError`. A write error fails the appends it carried, the spool goes on; an fsync error makes
 * every later call fail (the kernel may have dropped the data): close and open again.
 */
export class ResultSpool<T = unknown> {
  private readonly statePath: string;
  private segments: Segment[] = [];
  private active: { readonly segment: Segment; readonly handle: FileHandle } | undefined;
  /** Closed segments with writes not yet fsync'd: synced and closed by the next group commit. */
  private unsynced: FileHandle[] = [];
  private directoryDirty = false;
  private totalBytes = 0;

  private nextSequence = 1;
  private written = 0;
  private durable = 0;
  private acknowledged = 0;
  private persistedAcknowledged = 0;
  private discarded = 0;
  private highWater = 0;
  private droppedTotal = 0;
  private corruptedTotal = 0;

  private pending: PendingAppend[] = [];
  private flushQueued = false;
  private housekeeping: Promise<void> | undefined;
  /** File operations (writes, group commits, deletions, repairs) run one at a time, in order, on this. */
  private chain: Promise<unknown> = Promise.resolve();
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<Waiter>();
  /** Where the last read stopped: the next one, usually starting there, need not walk from an index entry. */
  private cursor:
    { readonly segment: Segment; readonly sequence: number; readonly offset: number } | undefined;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;

  private constructor(
    /** The spool's directory. */
    readonly dir: string,
    private readonly lock: DirectoryLock,
    private readonly maxBytes: number,
    private readonly segmentBytes: number,
    private readonly syncIntervalMs: number,
    private readonly onIncident: (incident: SpoolIncident) => void,
  ) {
    this.statePath = join(dir, STATE_FILE);
  }

  /**
   * Opens the spool in `dir` (created if missing), recovering from a crash: a torn last write is cut off,
   * damaged records are quarantined, acknowledged records are deleted, and the spool is brought within
   * `maxBytes`.
   */
  static async open<T = unknown>(dir: string, options: ResultSpoolOptions): Promise<ResultSpool<T>> {
    const { maxBytes, segmentBytes, syncIntervalMs } = resolveOptions(options);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = await acquireDirectoryLock(dir, LOCK_FILE, 'result spool');
    try {
      const spool = new ResultSpool<T>(
        dir,
        lock,
        maxBytes,
        segmentBytes,
        syncIntervalMs,
        options.onIncident ?? (() => undefined),
      );
      await spool.recover();
      return spool;
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /**
   * Appends a record (a JSON-serialisable value; it is read back as `JSON.parse` gives it) and resolves with
   * its sequence number once it is written: it survives kill -9 from then on, and power loss once fsync'd,
   * at most `syncIntervalMs` later. Sequence numbers follow the order of the calls.
   */
  async append(record: T): Promise<number> {
    this.assertUsable();
    const frame = encodeFrame(this.nextSequence, record);
    if (frame.length > this.segmentBytes) {
      throw new RangeError(
        `result spool: a record of ${frame.length} bytes exceeds the segment size (${this.segmentBytes})`,
      );
    }
    const sequence = this.nextSequence++;
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ sequence, frame, resolve, reject });
      if (!this.flushQueued) {
        this.flushQueued = true;
        void this.exclusive(() => this.flush());
      }
    });
  }

  /**
   * Records after `afterSequence` (and after the acknowledged ones), in sequence order, at most `limit`, as
   * far as they are fsync'd. For streaming batches: start from `stats().acknowledgedSequence` after each
   * (re)connect, then from the last sequence sent. Sequences may jump where records were dropped or lost.
   */
  async read(afterSequence: number, limit: number): Promise<SpooledResult<T>[]> {
    this.assertUsable();
    if (!Number.isSafeInteger(afterSequence) || afterSequence < 0) {
      throw new RangeError(`result spool: afterSequence must be an integer ≥ 0, got ${afterSequence}`);
    }
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`result spool: limit must be an integer ≥ 1, got ${limit}`);
    }
    const from = Math.max(afterSequence, this.discarded) + 1;
    const upTo = this.durable;
    const results: SpooledResult<T>[] = [];
    for (const segment of [...this.segments]) {
      const start = Math.max(from, segment.first);
      if (results.length >= limit || start > upTo) break;
      if (start > segment.last) continue;
      const stop = Math.min(upTo, segment.last, start + (limit - results.length) - 1);
      const outcome = await this.readSegment(segment, start, stop, results);
      if (outcome !== undefined) {
        await this.exclusive(() => this.cutDamagedSegment(segment, outcome.offset, outcome.sequence));
        // Stop at the bad record: what came before it goes out now, what follows it on the next read.
        if (results.length > 0) break;
      }
    }
    // Acknowledged or dropped while this read was under way.
    return results.filter((result) => result.sequence > this.discarded);
  }

  /**
   * Resolves as soon as `read(afterSequence, …)` has something to return; rejects when the spool closes or
   * `signal` aborts.
   */
  async waitForRecords(afterSequence: number, signal?: AbortSignal): Promise<void> {
    this.assertUsable();
    if (this.hasReadable(afterSequence)) return;
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(waiter);
        reject(signal?.reason as Error);
      };
      const waiter: Waiter = {
        afterSequence,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Everything up to `upTo` is committed upstream: it is no longer read, the watermark is persisted (once
   * this resolves, those records never come back), then segments holding nothing newer are deleted.
   * Acknowledging again, or less, is harmless; beyond `lastSequence` is a RangeError.
   */
  async acknowledge(upTo: number): Promise<void> {
    this.assertUsable();
    if (!Number.isSafeInteger(upTo) || upTo < 0 || upTo > this.written) {
      throw new RangeError(`result spool: cannot acknowledge ${upTo}: the last sequence is ${this.written}`);
    }
    if (upTo > this.acknowledged) this.acknowledged = upTo;
    if (upTo > this.discarded) this.discarded = upTo;
    if (this.persistedAcknowledged >= upTo) return;
    this.housekeeping ??= this.exclusive(async () => {
      // From here on a later acknowledgement queues its own run: this one may have read the state already.
      this.housekeeping = undefined;
      await this.persistState();
      await this.deleteDiscardedSegments();
    });
    return this.housekeeping;
  }

  /** fsyncs what is written now, without waiting for the group commit. */
  async sync(): Promise<void> {
    this.assertUsable();
    await this.exclusive(() => this.syncNow());
  }

  stats(): SpoolStats {
    let depth = 0;
    for (const segment of this.segments) {
      depth += Math.max(0, segment.last - Math.max(segment.first - 1, this.discarded));
    }
    return {
      depth,
      bytes: this.totalBytes,
      droppedTotal: this.droppedTotal,
      corruptedTotal: this.corruptedTotal,
      lastSequence: this.written,
      durableSequence: this.durable,
      acknowledgedSequence: this.acknowledged,
    };
  }

  /** Writes what was appended, fsyncs, releases the directory. Later calls fail. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    try {
      await this.exclusive(async () => {
        try {
          if (!this.failure) await this.syncNow();
        } finally {
          await this.active?.handle.close();
          this.active = undefined;
          for (const handle of this.unsynced.splice(0)) await handle.close();
        }
      });
    } finally {
      for (const waiter of this.waiters) waiter.reject(new Error('result spool: closed'));
      this.waiters.clear();
      this.lock.release();
    }
  }

  private assertUsable(): void {
    if (this.closing) throw new Error('result spool: closed');
    if (this.failure) throw this.failure;
  }

  private exclusive<R>(task: () => Promise<R>): Promise<R> {
    const result = this.chain.then(task);
    this.chain = result.catch(() => undefined);
    return result;
  }

  // Writing

  private async flush(): Promise<void> {
    this.flushQueued = false;
    const batch = this.pending;
    this.pending = [];
    let index = 0;
    while (index < batch.length) {
      if (this.failure) {
        for (const entry of batch.slice(index)) entry.reject(this.failure);
        return;
      }
      const head = batch[index]!;
      if (this.active && this.active.segment.bytes + head.frame.length > this.segmentBytes) this.seal();
      const room = this.segmentBytes - (this.active?.segment.bytes ?? 0);
      let end = index;
      let size = 0;
      for (let next = batch[end]; next && size + next.frame.length <= room; next = batch[++end]) {
        size += next.frame.length;
      }
      const chunk = batch.slice(index, end);
      index = end;
      try {
        await this.makeRoom(size);
        await this.write(chunk, size);
      } catch (error) {
        for (const entry of chunk) entry.reject(error);
        continue;
      }
      for (const entry of chunk) entry.resolve(entry.sequence);
    }
  }

  /** Drops the oldest segments until `size` more bytes fit within `maxBytes`. */
  private async makeRoom(size: number): Promise<void> {
    // Segments hold at most segmentBytes ≤ maxBytes / 2, so dropping all but the one written always suffices.
    for (let oldest = this.segments[0]; this.totalBytes + size > this.maxBytes; oldest = this.segments[0]) {
      if (!oldest || oldest === this.active?.segment) return;
      const live = oldest.last - Math.max(oldest.first - 1, this.discarded);
      this.discarded = Math.max(this.discarded, oldest.last);
      this.droppedTotal += Math.max(0, live);
      // Persisted first: after a crash the segment is deleted and counted once, whichever step it missed.
      await this.persistState();
      this.removeSegment(oldest);
      await unlinkIfPresent(oldest.path);
    }
  }

  private async write(chunk: readonly PendingAppend[], size: number): Promise<void> {
    const first = chunk[0]!.sequence;
    const { segment, handle } = this.active ?? (await this.startSegment(first));
    const buffer =
      chunk.length === 1
        ? chunk[0]!.frame
        : Buffer.concat(
            chunk.map((entry) => entry.frame),
            size,
          );
    try {
      for (let done = 0; done < size;) {
        const { bytesWritten } = await handle.write(buffer, done, size - done, segment.bytes + done);
        if (bytesWritten === 0) throw new Error(`result spool: no progress writing ${segment.path}`);
        done += bytesWritten;
      }
    } catch (error) {
      // Cut what part of the chunk reached the file, and go on in a new segment: the sequences of the failed
      // appends are skipped, and a segment's sequences must stay contiguous.
      await handle.truncate(segment.bytes).catch(() => undefined);
      this.seal();
      if (segment.bytes === 0) {
        this.removeSegment(segment);
        await unlinkIfPresent(segment.path);
      }
      throw error;
    }
    let position = segment.bytes;
    for (const entry of chunk) {
      if ((entry.sequence - segment.first) % INDEX_STRIDE === 0) segment.offsets.push(position);
      position += entry.frame.length;
    }
    segment.bytes += size;
    segment.last = chunk[chunk.length - 1]!.sequence;
    this.totalBytes += size;
    this.written = segment.last;
    this.scheduleSync();
  }

  private async startSegment(first: number): Promise<{ segment: Segment; handle: FileHandle }> {
    const path = join(this.dir, segmentName(first));
    const handle = await open(path, 'wx', 0o600);
    const segment: Segment = { first, last: first - 1, bytes: 0, path, offsets: [] };
    this.segments.push(segment);
    this.directoryDirty = true;
    this.active = { segment, handle };
    return this.active;
  }

  private seal(): void {
    if (!this.active) return;
    this.unsynced.push(this.active.handle);
    this.active = undefined;
  }

  private scheduleSync(): void {
    if (this.syncTimer !== undefined || this.closing) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      // A failure is kept in this.failure and reported by the next call.
      this.exclusive(() => this.syncNow()).catch(() => undefined);
    }, this.syncIntervalMs);
  }

  private async syncNow(): Promise<void> {
    if (this.failure) throw this.failure;
    const target = this.written;
    const sealed = this.unsynced.splice(0);
    try {
      for (const handle of sealed) await handle.datasync();
      if (this.active && target > this.durable) await this.active.handle.datasync();
      if (this.directoryDirty) {
        this.directoryDirty = false;
        await syncDirectory(this.dir);
      }
    } catch (error) {
      // After a failed fsync the kernel may have dropped the dirty pages: nothing written can be trusted.
      this.failure = new Error(`result spool: fsync failed in ${this.dir}; close and reopen the spool`, {
        cause: error,
      });
      throw this.failure;
    } finally {
      for (const handle of sealed) await handle.close().catch(() => undefined);
    }
    if (target > this.durable) {
      this.durable = target;
      for (const waiter of this.waiters) {
        if (!this.hasReadable(waiter.afterSequence)) continue;
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  private hasReadable(afterSequence: number): boolean {
    const from = Math.max(afterSequence, this.discarded) + 1;
    const segment = this.segments.find((candidate) => candidate.last >= from);
    return segment !== undefined && Math.max(segment.first, from) <= this.durable;
  }

  // Deleting

  private async deleteDiscardedSegments(): Promise<void> {
    for (let oldest = this.segments[0]; oldest && oldest.last <= this.discarded; oldest = this.segments[0]) {
      if (oldest === this.active?.segment) {
        await this.active.handle.close();
        this.active = undefined;
      }
      this.removeSegment(oldest);
      // Not made durable: a segment that comes back after a power cut is deleted again on open.
      await unlinkIfPresent(oldest.path);
    }
  }

  private removeSegment(segment: Segment): void {
    this.segments = this.segments.filter((candidate) => candidate !== segment);
    this.totalBytes -= segment.bytes;
    if (this.cursor?.segment === segment) this.cursor = undefined;
  }

  private async persistState(): Promise<void> {
    this.highWater = Math.max(this.highWater, this.written);
    const state: PersistedState = {
      format: FORMAT,
      acknowledgedSequence: this.acknowledged,
      discardedSequence: this.discarded,
      highWaterSequence: this.highWater,
      droppedTotal: this.droppedTotal,
      corruptedTotal: this.corruptedTotal,
    };
    const temporary = `${this.statePath}.tmp`;
    await writeFileDurably(temporary, `${JSON.stringify(state)}\n`);
    await rename(temporary, this.statePath);
    await syncDirectory(this.dir);
    this.persistedAcknowledged = Math.max(this.persistedAcknowledged, state.acknowledgedSequence);
  }

  // Reading

  /** Reads records `start..stop` of a segment into `out`; returns where a bad record was met, if one was. */
  private async readSegment(
    segment: Segment,
    start: number,
    stop: number,
    out: SpooledResult<T>[],
  ): Promise<{ offset: number; sequence: number } | undefined> {
    let { sequence, offset } = this.locate(segment, start);
    const end = segment.bytes;
    let handle: FileHandle;
    try {
      handle = await open(segment.path, 'r');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined; // acknowledged or dropped meanwhile
      throw error;
    }
    try {
      let buffer: Buffer = EMPTY;
      let bufferStart = offset;
      while (sequence <= stop) {
        const at = offset - bufferStart;
        const frame = decodeFrame(buffer, at);
        if (frame === INCOMPLETE) {
          if (end - offset <= buffer.length - at) return { offset, sequence }; // runs past the segment's end
          const size = Math.min(end - offset, Math.max(READ_CHUNK_BYTES, frameBytesHint(buffer, at)));
          buffer = await readAt(handle, offset, size);
          bufferStart = offset;
          if (buffer.length < size) return { offset, sequence }; // shorter than what was written
          continue;
        }
        if (frame === INVALID || frame.sequence !== sequence) return { offset, sequence };
        if (sequence >= start) out.push({ sequence, record: parsePayload(buffer, frame) as T });
        offset = bufferStart + frame.end;
        sequence++;
      }
      this.cursor = { segment, sequence, offset };
      return undefined;
    } finally {
      await handle.close();
    }
  }

  /** The nearest known record at or before `sequence` in the segment: from the cursor or the index. */
  private locate(segment: Segment, sequence: number): { sequence: number; offset: number } {
    const entry = Math.floor((sequence - segment.first) / INDEX_STRIDE);
    const indexed = segment.offsets[entry];
    let best =
      indexed === undefined
        ? { sequence: segment.first, offset: 0 }
        : { sequence: segment.first + entry * INDEX_STRIDE, offset: indexed };
    const cursor = this.cursor;
    if (cursor?.segment === segment && cursor.sequence <= sequence && cursor.sequence > best.sequence) {
      best = cursor;
    }
    return best;
  }

  // Repairing

  /** A bad record met while reading (the disk changed under the spool): cut the segment there. */
  private async cutDamagedSegment(segment: Segment, offset: number, sequence: number): Promise<void> {
    if (!this.segments.includes(segment) || sequence > segment.last) return; // deleted or cut meanwhile
    const handle = await open(segment.path, 'r');
    let tail: Buffer;
    try {
      tail = await readAt(handle, offset, Math.max(0, (await handle.stat()).size - offset));
    } finally {
      await handle.close();
    }
    const frame = decodeFrame(tail, 0);
    if (typeof frame !== 'string' && frame.sequence === sequence) return; // reads well after all
    if (segment === this.active?.segment) this.seal();
    const lost = segment.last - Math.max(sequence - 1, this.discarded);
    const quarantine = await quarantineTail(segment.path, offset, tail);
    this.totalBytes -= segment.bytes - offset;
    this.highWater = Math.max(this.highWater, segment.last);
    this.shorten(segment, sequence - 1, offset);
    this.corruptedTotal += Math.max(0, lost);
    await this.persistState();
    if (segment.last < segment.first) {
      this.removeSegment(segment);
      await unlinkIfPresent(segment.path);
    }
    this.onIncident({
      kind: 'corruption',
      segment: segment.path,
      offset,
      sequence,
      lostRecords: Math.max(0, lost),
      quarantine,
    });
  }

  private shorten(segment: Segment, last: number, bytes: number): void {
    segment.last = last;
    segment.bytes = bytes;
    segment.offsets.length = last < segment.first ? 0 : Math.floor((last - segment.first) / INDEX_STRIDE) + 1;
    if (this.cursor?.segment === segment) this.cursor = undefined;
  }

  // Opening

  private async recover(): Promise<void> {
    const state = await readState(this.statePath);
    if (state) {
      this.acknowledged = this.persistedAcknowledged = state.acknowledgedSequence;
      this.discarded = state.discardedSequence;
      this.highWater = state.highWaterSequence;
      this.droppedTotal = state.droppedTotal;
      this.corruptedTotal = state.corruptedTotal;
    }
    await rm(`${this.statePath}.tmp`, { force: true });
    const names = (await readdir(this.dir)).filter((name) => SEGMENT_NAME.test(name)).sort();
    let stateChanged = false;
    for (const [index, name] of names.entries()) {
      const path = join(this.dir, name);
      const first = Number(name.slice(0, 20));
      const nextName = names[index + 1];
      const bytes = await readFile(path);
      const scan = scanFrames(bytes, first, INDEX_STRIDE);
      const segment: Segment = { first, last: scan.last, bytes: bytes.length, path, offsets: scan.offsets };
      if (scan.validBytes < bytes.length) {
        // Records from the bad one to the end of the segment: up to the next segment's first, or, in the
        // newest segment, to the last valid record found beyond the bad one. None: a torn write.
        const lostThrough =
          nextName !== undefined
            ? Number(nextName.slice(0, 20)) - 1
            : (lastSequenceBeyond(bytes, scan.validBytes, scan.last) ?? scan.last);
        const lost = Math.max(0, lostThrough - Math.max(scan.last, this.discarded));
        if (lost === 0) {
          await truncateDurably(path, scan.validBytes);
          this.onIncident({
            kind: 'torn-tail',
            segment: path,
            offset: scan.validBytes,
            bytes: bytes.length - scan.validBytes,
          });
        } else {
          const quarantine = await quarantineTail(path, scan.validBytes, bytes.subarray(scan.validBytes));
          this.corruptedTotal += lost;
          this.highWater = Math.max(this.highWater, lostThrough);
          stateChanged = true;
          this.onIncident({
            kind: 'corruption',
            segment: path,
            offset: scan.validBytes,
            sequence: scan.last + 1,
            lostRecords: lost,
            quarantine,
          });
        }
        segment.bytes = scan.validBytes;
      }
      if (segment.last < segment.first || segment.last <= this.discarded) {
        await unlinkIfPresent(path);
        continue;
      }
      // After a kill -9 the last writes may still be only in the page cache: make them durable before any
      // of them is handed out.
      await syncFile(path);
      this.segments.push(segment);
      this.totalBytes += segment.bytes;
    }
    const lastOnDisk = this.segments.at(-1)?.last ?? 0;
    this.written = this.durable = Math.max(this.highWater, this.discarded, lastOnDisk);
    this.nextSequence = this.written + 1;
    if (stateChanged) await this.persistState();
    await this.makeRoom(0);
  }
}

function resolveOptions(options: ResultSpoolOptions): {
  maxBytes: number;
  segmentBytes: number;
  syncIntervalMs: number;
} {
  const { maxBytes } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 2 * MIN_SEGMENT_BYTES) {
    throw new RangeError(`result spool: maxBytes must be an integer ≥ ${2 * MIN_SEGMENT_BYTES}`);
  }
  const segmentBytes =
    options.segmentBytes ??
    Math.max(MIN_SEGMENT_BYTES, Math.min(MAX_DEFAULT_SEGMENT_BYTES, Math.floor(maxBytes / 8)));
  if (
    !Number.isSafeInteger(segmentBytes) ||
    segmentBytes < MIN_SEGMENT_BYTES ||
    segmentBytes > maxBytes / 2
  ) {
    throw new RangeError(
      `result spool: segmentBytes must be an integer from ${MIN_SEGMENT_BYTES} to maxBytes / 2 (${maxBytes / 2})`,
    );
  }
  const syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
  if (!Number.isFinite(syncIntervalMs) || syncIntervalMs < 0) {
    throw new RangeError('result spool: syncIntervalMs must be ≥ 0');
  }
  return { maxBytes, segmentBytes, syncIntervalMs };
}

async function readState(path: string): Promise<PersistedState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  let state: Partial<Record<keyof PersistedState, unknown>> | undefined;
  try {
    state = JSON.parse(text) as typeof state;
  } catch {
    // reported below
  }
  const counters = [
    state?.acknowledgedSequence,
    state?.discardedSequence,
    state?.highWaterSequence,
    state?.droppedTotal,
    state?.corruptedTotal,
  ];
  if (state?.format !== FORMAT || !counters.every((value) => Number.isSafeInteger(value))) {
    // Replaced atomically, so never torn: this is damage or a newer format. Guessing could reuse sequence
    // numbers or resend acknowledged results; a person has to look.
    throw new Error(`result spool: ${path} is not a spool state of format ${FORMAT}; inspect it`);
  }
  return state as PersistedState;
}

function segmentName(first: number): string {
  return `${String(first).padStart(20, '0')}.seg`;
}

async function readAt(handle: FileHandle, position: number, size: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await handle.read(buffer, filled, size - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** Keeps the bytes from `offset` on aside (`<segment>.<offset>.corrupt`), then cuts the segment there. */
async function quarantineTail(path: string, offset: number, tail: Buffer): Promise<string> {
  const quarantine = `${path}.${offset}.corrupt`;
  await writeFileDurably(quarantine, tail);
  await truncateDurably(path, offset);
  return quarantine;
}

async function writeFileDurably(path: string, content: string | Buffer): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.writeFile(content);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function truncateDurably(path: string, size: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(size);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
