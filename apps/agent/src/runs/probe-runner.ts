import { randomUUID } from 'node:crypto';
import type { ConfigFieldError, RetryPolicy } from '@wsmon/contracts';
import { createProbe, invalidConfigResult, type Probe, type ProbeRuntime } from '@wsmon/probe';
import type { TestAssignment } from '@wsmon/proto/agent';
import { probePhaseLog } from '../http/probe-debug';
import { resultRecord, type ResultRecord } from '../results/result-record';
import { runWithRetry, systemClock, type Clock, type RunTest } from '../scheduler';
import type { ResultSpool } from '../spool/result-spool';
import { checkRunnable, type HeldTest } from '../config/test-assignment';

/** What a run needs of a test. */
export interface RunnableTest {
  readonly id: string;
  readonly revision: number;
  readonly name: string;
  readonly retry: RetryPolicy;
  readonly probe: Probe;
}

export type RunKind = 'scheduled' | 'on_demand';
/** `abandoned`: stopped by a drain or a shutdown before it ended, so no result was recorded. */
export const RUN_OUTCOMES = ['success', 'failure', 'abandoned', 'error'] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

/** The last recorded result of a scheduled test, for `/metrics`. */
export interface LastResult {
  readonly testId: string;
  readonly name: string;
  readonly success: boolean;
  readonly durationMs: number;
  /** When the reported attempt started, epoch milliseconds. */
  readonly timestampMs: number;
}

export interface ProbeRunnerOptions {
  readonly spool: Pick<ResultSpool<ResultRecord>, 'append' | 'sync'>;
  /** The agent's concurrency limit: heartbeats report it minus the runs in flight as free slots. */
  readonly concurrency: number;
  readonly probeRuntime?: ProbeRuntime;
  /** Receives each run's phase log (`--debug`), built from the result, which holds no secret. */
  readonly debugLog?: (line: string) => void;
  /** A result that could not be recorded (the spool failed): worth a log line. */
  readonly onError?: (message: string) => void;
  /** Times the retry delays. */
  readonly clock?: Clock;
  readonly newId?: () => string;
}

export interface SettleOutcome {
  /** Runs that ended, and recorded their result, within the grace period. */
  readonly finished: number;
  /** Runs abandoned at its end: they record no result. */
  readonly abandoned: number;
}

interface Running {
  readonly kind: RunKind;
  readonly controller: AbortController;
}

/** How long abandoned runs get to let go (they only wait for a spool write under way). */
const ABANDON_GRACE_MS = 1000;

/**
 * Runs probes and records their results in the spool: the scheduler's runs (`runScheduled` is its
 * `run`) and the control plane's on-demand runs (`runOnDemand`), each with its test's retry policy.
 * It knows every run in flight, of both kinds, so that heartbeats count them all, and so that a drain
 * or a shutdown can let them finish for a while and abandon the rest: an abandoned run records
 * nothing (the probe engine cannot be interrupted: its connection ends by its own timeout, unseen).
 */
export class ProbeRunner {
  private readonly spool: ProbeRunnerOptions['spool'];
  private readonly concurrency: number;
  private readonly probeRuntime: ProbeRuntime | undefined;
  private readonly debugLog: ((line: string) => void) | undefined;
  private readonly onError: (message: string) => void;
  private readonly clock: Clock;
  private readonly newId: () => string;
  private readonly running = new Set<Running>();
  private readonly idleWaiters = new Set<() => void>();
  private readonly counts = new Map<string, number>();
  private readonly lastResults = new Map<string, LastResult>();
  private stopped = false;

  constructor(options: ProbeRunnerOptions) {
    this.spool = options.spool;
    this.concurrency = options.concurrency;
    this.probeRuntime = options.probeRuntime;
    this.debugLog = options.debugLog;
    this.onError = options.onError ?? (() => undefined);
    this.clock = options.clock ?? systemClock;
    this.newId = options.newId ?? randomUUID;
  }

  /** The scheduler's `run`: one slot of a held test. */
  readonly runScheduled: RunTest<HeldTest> = (test, slotMs, signal) =>
    this.run('scheduled', test, slotMs, undefined, signal);

  /**
   * Runs the test of a RunNow once, now, and records exactly one result carrying `runId`: the probe's,
   * or, for a probe configuration (or retry policy) the shared schema rejects, a result with reason
   * `invalid_config` naming every field error. Returns at once; nothing held changes.
   */
  runOnDemand(runId: string, assignment: TestAssignment): void {
    if (this.stopped) return;
    const startedMs = this.clock.now();
    const checked = checkRunnable(assignment);
    if (!checked.ok) {
      void this.recordInvalid(runId, assignment, checked.errors, startedMs);
      return;
    }
    const test: RunnableTest = {
      id: assignment.test_id,
      revision: assignment.revision,
      name: assignment.name,
      retry: checked.retry,
      probe: createProbe(checked.config, this.probeRuntime),
    };
    void this.run('on_demand', test, startedMs, runId);
  }

  /** Runs in flight, scheduled and on-demand (abandoned ones no longer count). */
  get inFlight(): number {
    return this.running.size;
  }

  /** The concurrency limit minus the runs in flight. */
  get freeSlots(): number {
    return Math.max(0, this.concurrency - this.running.size);
  }

  /** Runs by kind and outcome since the start. */
  runCounts(): { kind: RunKind; outcome: RunOutcome; count: number }[] {
    return (['scheduled', 'on_demand'] as const).flatMap((kind) =>
      RUN_OUTCOMES.map((outcome) => ({ kind, outcome, count: this.counts.get(`${kind}:${outcome}`) ?? 0 })),
    );
  }

  /** The last result of each scheduled test still held. */
  lastResultsOf(): LastResult[] {
    return [...this.lastResults.values()];
  }

  /** Forgets the last results of tests no longer held, so their series leave `/metrics`. */
  keepLastResultsOf(testIds: ReadonlySet<string>): void {
    for (const testId of this.lastResults.keys()) if (!testIds.has(testId)) this.lastResults.delete(testId);
  }

  /**
   * Lets the runs in flight finish for `graceMs`, abandons those still going, and makes every recorded
   * result durable (so the spool hands it out). Runs started meanwhile are waited for as well.
   */
  async settle(graceMs: number): Promise<SettleOutcome> {
    const before = this.running.size;
    let abandoned = 0;
    if (!(await this.whenIdle(graceMs))) {
      abandoned = this.running.size;
      for (const run of this.running) run.controller.abort();
      await this.whenIdle(ABANDON_GRACE_MS);
    }
    try {
      await this.spool.sync();
    } catch (error) {
      this.onError(`the result spool could not be synced (${(error as Error).message})`);
    }
    return { finished: Math.max(0, before - abandoned), abandoned };
  }

  /** No more on-demand runs start (scheduled ones stop with the scheduler). */
  stop(): void {
    this.stopped = true;
  }

  private async run(
    kind: RunKind,
    test: RunnableTest,
    slotMs: number,
    runId: string | undefined,
    outer?: AbortSignal,
  ): Promise<void> {
    const controller = new AbortController();
    const abort = () => controller.abort();
    outer?.addEventListener('abort', abort, { once: true });
    if (outer?.aborted) abort();
    const entry: Running = { kind, controller };
    this.running.add(entry);
    try {
      const startedMs = this.clock.now();
      const outcome = await untilAborted(
        runWithRetry(() => test.probe.run(), test.retry, controller.signal, this.clock),
        controller.signal,
      );
      if (outcome === undefined || controller.signal.aborted) {
        this.count(kind, 'abandoned');
        return;
      }
      const { result, attempts } = outcome;
      const record = resultRecord(
        {
          resultId: this.newId(),
          testId: test.id,
          testRevision: test.revision,
          slotMs,
          startedMs,
          attempts,
          ...(runId === undefined ? {} : { runId }),
        },
        result,
      );
      await this.spool.append(record);
      this.count(kind, result.success ? 'success' : 'failure');
      if (kind === 'scheduled') {
        this.lastResults.set(test.id, {
          testId: test.id,
          name: test.name,
          success: result.success,
          durationMs: result.timings.total_ms,
          timestampMs: Date.parse(result.started_at),
        });
      }
      if (this.debugLog) {
        const context = { module: test.name, timeoutMs: test.probe.config.timeout_ms };
        for (const line of probePhaseLog(result, context)) this.debugLog(`test_id=${test.id} ${line}`);
      }
    } catch (error) {
      this.count(kind, 'error');
      this.onError(`test ${test.id}: the result could not be recorded (${(error as Error).message})`);
    } finally {
      outer?.removeEventListener('abort', abort);
      this.running.delete(entry);
      if (this.running.size === 0) for (const wake of [...this.idleWaiters]) wake();
    }
  }

  private async recordInvalid(
    runId: string,
    assignment: TestAssignment,
    errors: readonly ConfigFieldError[],
    startedMs: number,
  ): Promise<void> {
    const result = invalidConfigResult(assignment.probe ?? {}, errors);
    const record = resultRecord(
      {
        resultId: this.newId(),
        testId: assignment.test_id,
        testRevision: assignment.revision,
        slotMs: startedMs,
        startedMs,
        attempts: 1,
        runId,
      },
      result,
    );
    try {
      await this.spool.append(record);
      this.count('on_demand', 'failure');
    } catch (error) {
      this.count('on_demand', 'error');
      this.onError(`run ${runId}: the result could not be recorded (${(error as Error).message})`);
    }
  }

  private count(kind: RunKind, outcome: RunOutcome): void {
    const key = `${kind}:${outcome}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Resolves true once nothing runs, or false after `timeoutMs`. */
  private whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        this.idleWaiters.delete(wake);
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(wake);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.add(wake);
    });
  }
}

/** The promise's value, or undefined as soon as `signal` aborts (a later rejection is then ignored). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  promise.catch(() => undefined);
  let onAbort = () => undefined as void;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
