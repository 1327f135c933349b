import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { systemClock, type Clock } from './clock';

/**
 * The last slot each test ran for, kept across restarts: after a restart a test never runs a slot
 * at or before it again. Reads and writes are synchronous (in memory); `flush` persists.
 */
export interface SlotStore {
  /** The last slot the test ran for, in epoch milliseconds; undefined when unknown. */
  lastSlot(testId: string): number | undefined;
  /** Records that the test's run for `slotMs` started. */
  recordSlot(testId: string, slotMs: number): void;
  /** Drops a test that is no longer scheduled here. */
  forget(testId: string): void;
  testIds(): Iterable<string>;
  /** Persists everything recorded so far. */
  flush(): Promise<void>;
}

/** A `SlotStore` that forgets everything with the process: for tests, and agents without a disk. */
export class InMemorySlotStore implements SlotStore {
  protected readonly slots: Map<string, number>;

  constructor(initial: Iterable<readonly [string, number]> = []) {
    this.slots = new Map(initial);
  }

  lastSlot(testId: string): number | undefined {
    return this.slots.get(testId);
  }

  recordSlot(testId: string, slotMs: number): void {
    this.slots.set(testId, slotMs);
  }

  forget(testId: string): void {
    this.slots.delete(testId);
  }

  testIds(): Iterable<string> {
    return this.slots.keys();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface FileSlotStoreOptions {
  /** How long a change waits before it is written, so a file is written at most this often. Default 1 s. */
  readonly writeDelayMs?: number;
  readonly clock?: Clock;
  /**
   * Told about a file that could not be read (the store then starts empty: a lost file costs at most
   * a re-run of a slot whose run time had not passed, never a burst) and about failed writes (the
   * next change retries).
   */
  readonly onError?: (error: unknown) => void;
}

const FILE_VERSION = 1;

/**
 * A `SlotStore` in one small JSON file, `{"version":1,"slots":{"<test id>":<slot ms>}}`, written
 * whole (a few hundred kB for ten thousand tests) at most once per `writeDelayMs`, atomically: to a
 * temporary file, synced, then renamed over the old one, so a crash leaves the old file or the new
 * one, never a torn one. Losing the last second of changes in a crash is harmless: those slots' run
 * times have passed, and slots whose run time passed are not run after a restart anyway.
 */
export class FileSlotStore extends InMemorySlotStore {
  private readonly writeDelayMs: number;
  private readonly clock: Clock;
  private readonly onError: (error: unknown) => void;
  private dirty = false;
  private cancelWrite: (() => void) | undefined;
  /** Writes run one after another: each new one is chained after the last. */
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    initial: Iterable<readonly [string, number]>,
    options: FileSlotStoreOptions,
  ) {
    super(initial);
    this.writeDelayMs = options.writeDelayMs ?? 1000;
    this.clock = options.clock ?? systemClock;
    this.onError = options.onError ?? (() => undefined);
  }

  /** Loads the file at `path` (a missing file is an empty store) and creates its directory. */
  static async open(path: string, options: FileSlotStoreOptions = {}): Promise<FileSlotStore> {
    await mkdir(dirname(path), { recursive: true });
    let initial: [string, number][] = [];
    try {
      initial = decode(await readFile(path, 'utf8'));
    } catch (error) {
      if (!isMissingFile(error)) options.onError?.(error);
    }
    return new FileSlotStore(path, initial, options);
  }

  override recordSlot(testId: string, slotMs: number): void {
    if (this.slots.get(testId) === slotMs) return;
    super.recordSlot(testId, slotMs);
    this.changed();
  }

  override forget(testId: string): void {
    if (!this.slots.has(testId)) return;
    super.forget(testId);
    this.changed();
  }

  /** Writes pending changes now (and waits for a write under way). Rejects when the write fails. */
  override flush(): Promise<void> {
    this.cancelWrite?.();
    this.cancelWrite = undefined;
    return this.write();
  }

  private changed(): void {
    this.dirty = true;
    this.cancelWrite ??= this.clock.setTimer(() => {
      this.cancelWrite = undefined;
      this.write().catch(this.onError);
    }, this.writeDelayMs);
  }

  private write(): Promise<void> {
    const write = this.writes.then(() => this.writeIfDirty());
    this.writes = write.catch(() => undefined);
    return write;
  }

  private async writeIfDirty(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const body = JSON.stringify({ version: FILE_VERSION, slots: Object.fromEntries(this.slots) });
    try {
      await writeAtomically(this.path, body);
    } catch (error) {
      this.dirty = true;
      throw error;
    }
  }
}

async function writeAtomically(path: string, body: string): Promise<void> {
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(body);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

function decode(text: string): [string, number][] {
  const parsed: unknown = JSON.parse(text);
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !('version' in parsed) ||
    parsed.version !== FILE_VERSION ||
    !('slots' in parsed) ||
    typeof parsed.slots !== 'object' ||
    parsed.slots === null
  ) {
    throw new Error(`not a version ${FILE_VERSION} slot file`);
  }
  return Object.entries(parsed.slots).filter(
    (entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1]),
  );
}

function isMissingFile(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}
