import type { Schedule } from '@wsmon/contracts';
import { systemClock, type Clock } from './clock';
import { RunHeap, type HeapItem } from './run-heap';
import { SlotPlan, createSlotSequence, scheduleKey, type SlotSequence, type SlotTimes } from './slot-plan';
import { InMemorySlotStore, type SlotStore } from './slot-store';

/** What the scheduler needs to know of a test; the caller's own test type passes through to `run`. */
export interface ScheduledTest {
  readonly id: string;
  readonly revision: number;
  readonly schedule: Schedule;
}

/**
 * Runs one test for one slot: the probe with its retries, and the recording of the result. The
 * scheduler only decides when. The signal aborts when the scheduler stops and its deadline passes.
 */
export type RunTest<T> = (test: T, slotMs: number, signal: AbortSignal) => Promise<void>;

/** A run as it starts; `startedAtMs − runAtMs` is the schedule's delay. */
export interface RunStart<T> {
  readonly test: T;
  readonly slotMs: number;
  readonly runAtMs: number;
  readonly startedAtMs: number;
}

export interface TestSchedulerOptions<T extends ScheduledTest> {
  readonly run: RunTest<T>;
  /** Runs in flight at most; a run due while all are taken waits for one (see `TestScheduler`). */
  readonly maxConcurrent: number;
  /** Where the last run slot of each test is kept across restarts. Default: in memory. */
  readonly store?: SlotStore;
  readonly clock?: Clock;
  /** The largest offset of a cron test's run after its slot (see `slot-plan.ts`). Default 5 minutes. */
  readonly maxCronSpreadMs?: number;
  /**
   * The longest the timer sleeps, so that a wall-clock step or a suspended machine is noticed within
   * this long rather than at the next planned run. Default 1 s.
   */
  readonly maxTimerDelayMs?: number;
  /** Told as each run starts, for metrics; must not throw (a throw is ignored). */
  readonly onRunStart?: (start: RunStart<T>) => void;
  /** `run` threw or rejected. It should not: a failed probe is a result, not an exception. */
  readonly onRunError?: (test: T, slotMs: number, error: unknown) => void;
}

export interface SchedulerStats {
  readonly tests: number;
  readonly maxConcurrent: number;
  readonly inFlight: number;
  /** Runs due and waiting for a free slot. */
  readonly queued: number;
  /** `maxConcurrent − inFlight`: what the agent's heartbeat reports. */
  readonly freeSlots: number;
  readonly started: number;
  /** Slots skipped because the test's previous run was still going. */
  readonly skippedOverlap: number;
  /** Slots skipped because the test's previous run was still waiting for a free slot. */
  readonly skippedCapacity: number;
  /** Slots skipped because a later slot of the same test was already due (the event loop stalled). */
  readonly missedSlots: number;
  readonly runErrors: number;
  /** Tests whose schedule never fires again. */
  readonly unscheduled: number;
}

export interface StopOptions {
  /** How long in-flight runs may go on before they are aborted. */
  readonly deadlineMs: number;
  /** How long aborted runs get to settle before `stop` returns without them. Default 1 s. */
  readonly abortGraceMs?: number;
}

export interface StopOutcome {
  /** Runs that ended by themselves before the deadline. */
  readonly finished: number;
  /** Runs aborted at the deadline. */
  readonly aborted: number;
  /** Aborted runs that had still not settled after the grace period. */
  readonly unsettled: number;
}

interface Entry<T> extends HeapItem {
  test: T;
  key: string;
  plan: SlotPlan;
  /** The next planned run; in the heap unless the schedule never fires again. */
  slotMs: number;
}

interface QueuedRun<T> {
  readonly entry: Entry<T>;
  readonly run: SlotTimes;
  cancelled: boolean;
}

/**
 * Runs every test on its schedule (see `slot-plan.ts` for slots and offsets).
 *
 * One timer for all tests: planned runs sit in a min-heap by run time and a single timer is armed
 * for the earliest. Ten thousand tests cost ten thousand small heap entries, not ten thousand timers
 * or node-cron tasks (each node-cron task keeps its own timer, emitter and state machine and asks
 * `Intl` for the date parts at every beat, and none of them can start at a per-test offset or take a
 * fake clock). node-cron stays the authority on what a cron means: the slot sequences use its parser
 * and matcher, and the sequence of one cron is shared by all the tests on it.
 *
 * - `apply` reconciles the whole set: new tests are planned from their next slot, missing ones
 *   dropped, and a test whose revision and schedule are unchanged is left exactly as it is. A new
 *   revision with the same schedule keeps its planned run (its phase depends only on its id); a new
 *   schedule is planned afresh, still never re-running a slot it already ran.
 * - Never two runs of one test at once: a slot that comes while the test's previous run is going is
 *   skipped (`skippedOverlap`). Runs beyond `maxConcurrent` wait in a queue in the order they became
 *   due; a slot of a test whose previous run still waits is skipped (`skippedCapacity`).
 * - A late timer (a stalled event loop, a suspended machine, a wall clock stepped forward) runs only
 *   the latest due slot of each test; the earlier ones count as `missedSlots` (a stall of more than
 *   100 slots of a test is handled as a restart: no late run, the next future one). A clock stepped
 *   back delays runs until it reaches the slots already run.
 * - Each started run records its slot in the `SlotStore` (at start: a slot is attempted at most once,
 *   also across a crash); on restart, planning starts after that slot and at the first run time that
 *   has not passed, so a restart neither repeats nor bunches runs. A test removed from the set is
 *   removed from the store; a run already going for it is left to finish.
 */
export class TestScheduler<T extends ScheduledTest> {
  private readonly runTest: RunTest<T>;
  private readonly maxConcurrent: number;
  private readonly store: SlotStore;
  private readonly clock: Clock;
  private readonly maxCronSpreadMs: number | undefined;
  private readonly maxTimerDelayMs: number;
  private readonly onRunStart: ((start: RunStart<T>) => void) | undefined;
  private readonly onRunError: ((test: T, slotMs: number, error: unknown) => void) | undefined;

  private readonly entries = new Map<string, Entry<T>>();
  private readonly heap = new RunHeap<Entry<T>>();
  private readonly sequences = new Map<string, { readonly slots: SlotSequence; users: number }>();
  /** The abort controller of each test with a run in flight. */
  private readonly running = new Map<string, AbortController>();
  private readonly queuedByTest = new Map<string, QueuedRun<T>>();
  /** Runs waiting for a free slot, oldest first from `queueHead`; taken ones are cleared. */
  private queue: (QueuedRun<T> | undefined)[] = [];
  private queueHead = 0;
  private readonly idleWaiters = new Set<() => void>();
  private nextSeq = 0;
  private cancelTimer: (() => void) | undefined;
  private timerAtMs = Number.POSITIVE_INFINITY;
  private stopped = false;
  private readonly counts = {
    started: 0,
    skippedOverlap: 0,
    skippedCapacity: 0,
    missedSlots: 0,
    runErrors: 0,
  };

  constructor(options: TestSchedulerOptions<T>) {
    if (!Number.isInteger(options.maxConcurrent) || options.maxConcurrent < 1) {
      throw new RangeError(`maxConcurrent must be a positive integer, got ${options.maxConcurrent}`);
    }
    this.runTest = options.run;
    this.maxConcurrent = options.maxConcurrent;
    this.store = options.store ?? new InMemorySlotStore();
    this.clock = options.clock ?? systemClock;
    this.maxCronSpreadMs = options.maxCronSpreadMs;
    this.maxTimerDelayMs = options.maxTimerDelayMs ?? 1000;
    this.onRunStart = options.onRunStart;
    this.onRunError = options.onRunError;
  }

  /** Slots free for more runs: what heartbeats report. */
  get freeSlots(): number {
    return Math.max(0, this.maxConcurrent - this.running.size);
  }

  stats(): SchedulerStats {
    let unscheduled = 0;
    for (const entry of this.entries.values()) if (entry.heapIndex === -1) unscheduled++;
    return {
      tests: this.entries.size,
      maxConcurrent: this.maxConcurrent,
      inFlight: this.running.size,
      queued: this.queuedByTest.size,
      freeSlots: this.freeSlots,
      ...this.counts,
      unscheduled,
    };
  }

  isRunning(testId: string): boolean {
    return this.running.has(testId);
  }

  /** The test's next planned run; undefined for a test not scheduled here or that never runs again. */
  nextRun(testId: string): SlotTimes | undefined {
    const entry = this.entries.get(testId);
    if (entry === undefined || entry.heapIndex === -1) return undefined;
    return { slotMs: entry.slotMs, runAtMs: entry.runAtMs };
  }

  /**
   * Makes `tests` the whole set of scheduled tests. All or nothing: throws, changing nothing, when an
   * id is listed twice or a schedule is invalid (schedules are validated by `scheduleSchema` before).
   * The slot store keeps only the tests of the set, so after a restart the first call should carry
   * the kept configuration, not an empty set while it loads.
   */
  apply(tests: readonly T[]): void {
    if (this.stopped) throw new Error('the scheduler is stopped');
    const wanted = new Map<string, T>();
    for (const test of tests) {
      if (wanted.has(test.id)) throw new Error(`test ${test.id} is listed twice`);
      wanted.set(test.id, test);
    }
    const created = new Map<string, SlotSequence>();
    for (const test of wanted.values()) {
      const key = scheduleKey(test.schedule);
      if (!this.sequences.has(key) && !created.has(key)) {
        created.set(key, createSlotSequence(test.schedule, { maxCronSpreadMs: this.maxCronSpreadMs }));
      }
    }
    for (const [key, slots] of created) this.sequences.set(key, { slots, users: 0 });

    const nowMs = this.clock.now();
    for (const entry of this.entries.values()) {
      if (!wanted.has(entry.test.id)) this.remove(entry);
    }
    for (const test of wanted.values()) {
      const entry = this.entries.get(test.id);
      if (entry === undefined) {
        this.add(test, nowMs);
        continue;
      }
      const key = scheduleKey(test.schedule);
      if (key !== entry.key) this.replan(entry, test, key, nowMs);
      else if (test.revision !== entry.test.revision) entry.test = test;
      // Same revision, same schedule: nothing changes, not even the test object.
    }
    for (const [key, sequence] of this.sequences) if (sequence.users === 0) this.sequences.delete(key);
    for (const testId of [...this.store.testIds()]) if (!wanted.has(testId)) this.store.forget(testId);
    this.arm();
  }

  /**
   * Stops scheduling (planned and queued runs are dropped), lets in-flight runs finish for
   * `deadlineMs`, aborts those still going, and flushes the slot store.
   */
  async stop({ deadlineMs, abortGraceMs = 1000 }: StopOptions): Promise<StopOutcome> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.heap.clear();
    for (const queued of this.queuedByTest.values()) queued.cancelled = true;
    this.queuedByTest.clear();
    this.queue = [];
    this.queueHead = 0;

    const inFlight = this.running.size;
    let aborted = 0;
    if (!(await this.whenIdle(deadlineMs))) {
      aborted = this.running.size;
      for (const controller of this.running.values()) controller.abort();
      await this.whenIdle(abortGraceMs);
    }
    const unsettled = this.running.size;
    await this.store.flush();
    return { finished: inFlight - aborted, aborted, unsettled };
  }

  private add(test: T, nowMs: number): void {
    const key = scheduleKey(test.schedule);
    const entry: Entry<T> = {
      test,
      key,
      plan: this.planFor(test.id, key),
      slotMs: Number.NaN,
      runAtMs: Number.NaN,
      seq: this.nextSeq++,
      heapIndex: -1,
    };
    this.entries.set(test.id, entry);
    this.schedule(entry, entry.plan.firstRun(nowMs, this.store.lastSlot(test.id)));
  }

  private replan(entry: Entry<T>, test: T, key: string, nowMs: number): void {
    this.heap.remove(entry);
    this.release(entry.key);
    entry.test = test;
    entry.key = key;
    entry.plan = this.planFor(test.id, key);
    this.schedule(entry, entry.plan.firstRun(nowMs, this.store.lastSlot(test.id)));
  }

  private remove(entry: Entry<T>): void {
    const testId = entry.test.id;
    this.heap.remove(entry);
    this.release(entry.key);
    this.entries.delete(testId);
    const queued = this.queuedByTest.get(testId);
    if (queued !== undefined) {
      queued.cancelled = true;
      this.queuedByTest.delete(testId);
    }
  }

  private planFor(testId: string, key: string): SlotPlan {
    const sequence = this.sequences.get(key);
    if (sequence === undefined) throw new Error(`no slot sequence for ${key}`);
    sequence.users++;
    return new SlotPlan(testId, sequence.slots);
  }

  private release(key: string): void {
    const sequence = this.sequences.get(key);
    if (sequence !== undefined) sequence.users--;
  }

  private schedule(entry: Entry<T>, next: SlotTimes | null): void {
    if (next === null) return;
    entry.slotMs = next.slotMs;
    entry.runAtMs = next.runAtMs;
    this.heap.push(entry);
  }

  /** Keeps the one timer armed for the earliest planned run (or the longest sleep allowed). */
  private arm(): void {
    const top = this.heap.peek();
    if (
      this.stopped ||
      top === undefined ||
      (this.cancelTimer !== undefined && this.timerAtMs <= top.runAtMs)
    ) {
      return;
    }
    this.cancelTimer?.();
    const nowMs = this.clock.now();
    const delayMs = Math.min(Math.max(0, top.runAtMs - nowMs), this.maxTimerDelayMs);
    this.timerAtMs = nowMs + delayMs;
    this.cancelTimer = this.clock.setTimer(this.tick, delayMs);
  }

  private readonly tick = (): void => {
    this.cancelTimer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    const nowMs = this.clock.now();
    for (let top = this.heap.peek(); top !== undefined && top.runAtMs <= nowMs; top = this.heap.peek()) {
      this.heap.pop();
      this.fire(top, nowMs);
    }
    this.arm();
  };

  /** Plans the entry's run after this one (always later than now), then launches this one. */
  private fire(entry: Entry<T>, nowMs: number): void {
    const { run, missed, next } = entry.plan.catchUp({ slotMs: entry.slotMs, runAtMs: entry.runAtMs }, nowMs);
    this.counts.missedSlots += missed;
    this.schedule(entry, next);
    if (run !== null) this.launch(entry, run);
  }

  private launch(entry: Entry<T>, run: SlotTimes): void {
    const testId = entry.test.id;
    if (this.running.has(testId)) {
      this.counts.skippedOverlap++;
    } else if (this.queuedByTest.has(testId)) {
      this.counts.skippedCapacity++;
    } else if (this.running.size >= this.maxConcurrent) {
      const queued: QueuedRun<T> = { entry, run, cancelled: false };
      this.queuedByTest.set(testId, queued);
      this.queue.push(queued);
    } else {
      this.start(entry.test, run);
    }
  }

  private start(test: T, run: SlotTimes): void {
    const controller = new AbortController();
    this.running.set(test.id, controller);
    this.store.recordSlot(test.id, run.slotMs);
    this.counts.started++;
    try {
      this.onRunStart?.({ test, slotMs: run.slotMs, runAtMs: run.runAtMs, startedAtMs: this.clock.now() });
    } catch {
      // An observer must not stop the run it observes (nor the timer loop that called it).
    }
    // Called at once (the async wrapper only turns a synchronous throw into a rejection).
    const running = (async () => this.runTest(test, run.slotMs, controller.signal))();
    running
      .catch((error: unknown) => {
        this.counts.runErrors++;
        this.onRunError?.(test, run.slotMs, error);
      })
      .catch(() => undefined)
      .finally(() => this.finished(test.id));
  }

  private finished(testId: string): void {
    this.running.delete(testId);
    this.startQueued();
    if (this.running.size === 0) {
      for (const wake of [...this.idleWaiters]) wake();
    }
  }

  private startQueued(): void {
    while (!this.stopped && this.running.size < this.maxConcurrent && this.queueHead < this.queue.length) {
      const queued = this.queue[this.queueHead];
      this.queue[this.queueHead++] = undefined;
      if (queued === undefined || queued.cancelled) continue;
      this.queuedByTest.delete(queued.entry.test.id);
      this.start(queued.entry.test, queued.run);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Resolves true once nothing is in flight, or false after `timeoutMs`. */
  private whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        this.idleWaiters.delete(wake);
        cancel();
        resolve(true);
      };
      const cancel = this.clock.setTimer(() => {
        this.idleWaiters.delete(wake);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.add(wake);
    });
  }
}
