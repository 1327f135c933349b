/**
 * `node scripts/bench.mjs apps/agent/src/scheduler/scheduler.bench.ts [--tests=10000 --interval-s=60
 *  --duration-s=150 --store=file|memory --run-ms=0]`
 *
 * The scheduler's own footprint and accuracy, without probes: `--tests` tests every `--interval-s`
 * seconds whose run does nothing (or holds a timer for `--run-ms`), for `--duration-s` seconds, with
 * the file slot store by default. Reports resident memory (before, after planning, peak), CPU, the
 * delay between each run time and the run's start (p50, p99, max), and missed slots: every slot
 * whose run time fell in the window must have started exactly once. The goals: under 150 MB
 * for 10,000 tests, p99 delay under 50 ms, no missed slot. A benchmark, not a test: missed goals are
 * printed, the exit code is 0; a duplicated slot makes it nonzero.
 *
 * The two shapes of the issue: `--tests=10000 --interval-s=60 --duration-s=150` and
 * `--tests=1000 --interval-s=1 --duration-s=30`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Schedule } from '@wsmon/contracts';
import {
  GOAL_P99_MS,
  GOAL_RSS_MB,
  delaySummary,
  forEachRun,
  goalsLine,
  mb,
  percentile,
} from '../../bench/schedule-accuracy';
import { FileSlotStore, InMemorySlotStore, type SlotStore } from './slot-store';
import { TestScheduler, type ScheduledTest } from './test-scheduler';

/** Runs due this close to the end may not have started when the window closes: not counted. */
const END_MARGIN_MS = 200;

interface BenchTest extends ScheduledTest {
  /** What an agent holds per test besides the schedule: a probe configuration of typical size. */
  readonly probe: {
    readonly url: string;
    readonly timeout_ms: number;
    readonly headers: Record<string, string>;
    readonly steps: readonly { readonly type: string; readonly message?: string; readonly expect?: string }[];
  };
}

const { values } = parseArgs({
  options: {
    tests: { type: 'string', default: '10000' },
    'interval-s': { type: 'string', default: '60' },
    'duration-s': { type: 'string', default: '150' },
    store: { type: 'string', default: 'file' },
    'run-ms': { type: 'string', default: '0' },
  },
});
const testCount = Number(values.tests);
const intervalS = Number(values['interval-s']);
const durationMs = Number(values['duration-s']) * 1000;
const runMs = Number(values['run-ms']);

async function main(): Promise<number> {
  const schedule: Schedule = { interval_s: intervalS };
  const rssBefore = process.memoryUsage().rss;
  const tests: BenchTest[] = Array.from({ length: testCount }, (_, i) => ({
    id: randomUUID(),
    revision: 1,
    schedule,
    probe: {
      url: `wss://service-${i}.example.internal:8443/socket?tenant=${i}`,
      timeout_ms: 10_000,
      headers: { 'x-tenant': String(i), authorization: `Bearer {{ secrets.TOKEN_${i % 50} }}` },
      steps: [
        { type: 'send', message: `{"op":"ping","seq":${i}}` },
        { type: 'receive', expect: '"op":"pong"' },
        { type: 'close' },
      ],
    },
  }));

  const dir = await mkdtemp(join(tmpdir(), 'wsmon-scheduler-bench-'));
  const store: SlotStore =
    values.store === 'memory' ? new InMemorySlotStore() : await FileSlotStore.open(join(dir, 'slots.json'));
  // Delays and slots of every start, in preallocated arrays: the measurement must not allocate per run.
  const capacity = Math.ceil(testCount * (durationMs / (intervalS * 1000) + 2));
  const delays = new Float64Array(capacity);
  const runAts = new Float64Array(capacity);
  /** The last slot started per test: slots of a test start in order, so a repeat is never above it. */
  const lastSlots = new Map<string, number>();
  let duplicates = 0;
  let starts = 0;
  const scheduler = new TestScheduler<BenchTest>({
    maxConcurrent: testCount,
    store,
    onRunStart: ({ test, slotMs, runAtMs, startedAtMs }) => {
      if (starts < capacity) {
        delays[starts] = startedAtMs - runAtMs;
        runAts[starts] = runAtMs;
      }
      starts++;
      const last = lastSlots.get(test.id);
      if (last !== undefined && slotMs <= last) duplicates++;
      lastSlots.set(test.id, slotMs);
    },
    run:
      runMs > 0 ? () => new Promise<void>((resolve) => setTimeout(resolve, runMs)) : () => Promise.resolve(),
  });

  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const applyStarted = performance.now();
  scheduler.apply(tests);
  const applyMs = performance.now() - applyStarted;
  // The window opens after planning: a run whose time passed while `apply` planned is not due.
  const startMs = Date.now();
  const rssPlanned = process.memoryUsage().rss;
  const cpuBefore = process.cpuUsage();
  let rssPeak = rssPlanned;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 1000);

  await new Promise((resolve) => setTimeout(resolve, durationMs));
  const endMs = Date.now();
  clearInterval(sampler);
  loopDelay.disable();
  const cpu = process.cpuUsage(cpuBefore);
  const stats = scheduler.stats();
  await scheduler.stop({ deadlineMs: 1000 });
  await rm(dir, { recursive: true, force: true });

  // Every slot whose run time fell in [start, end − margin] must have started, once.
  const windowEndMs = endMs - END_MARGIN_MS;
  const expected = forEachRun(
    tests.map((test) => test.id),
    schedule,
    startMs,
    windowEndMs,
  );
  const recorded = Math.min(starts, capacity);
  // Delays of the runs in the window; those due while `apply` planned are late by its duration.
  const inWindow = new Float64Array(recorded);
  let startedInWindow = 0;
  for (let i = 0; i < recorded; i++) {
    if (runAts[i]! >= startMs && runAts[i]! <= windowEndMs) inWindow[startedInWindow++] = delays[i]!;
  }
  const sorted = inWindow.slice(0, startedInWindow).sort();
  const maxDuringApply = Math.max(0, ...delays.slice(0, recorded).filter((_, i) => runAts[i]! < startMs));
  const p99 = percentile(sorted, 0.99);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;

  console.log(
    `scheduler: ${testCount} tests every ${intervalS} s for ${durationMs / 1000} s, store=${values.store}, run-ms=${runMs}`,
  );
  console.log(
    `  apply: ${applyMs.toFixed(0)} ms (runs due meanwhile started up to ${maxDuringApply} ms late)`,
  );
  console.log(
    `  rss: before ${mb(rssBefore)} MB, planned ${mb(rssPlanned)} MB, peak ${mb(rssPeak)} MB (goal < ${GOAL_RSS_MB})`,
  );
  console.log(`  heap used at end: ${mb(process.memoryUsage().heapUsed)} MB`);
  console.log(
    `  cpu: ${cpuSeconds.toFixed(2)} s (${((100 * cpuSeconds * 1000) / (endMs - startMs)).toFixed(1)}% of one core)`,
  );
  console.log(`  delay run time → start: ${delaySummary(sorted)}`);
  console.log(
    `  event loop delay: p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, max ${(loopDelay.max / 1e6).toFixed(1)} ms`,
  );
  console.log(
    `  runs: ${starts} started; in window ${startedInWindow} of ${expected} expected; missed ${expected - startedInWindow}; duplicated slots ${duplicates}`,
  );
  console.log(
    `  scheduler stats: missedSlots ${stats.missedSlots}, skippedOverlap ${stats.skippedOverlap}, skippedCapacity ${stats.skippedCapacity}`,
  );
  console.log(
    `  ${goalsLine([
      rssPeak / 2 ** 20 < GOAL_RSS_MB ? null : 'rss',
      p99 < GOAL_P99_MS ? null : 'p99 delay',
      expected === startedInWindow ? null : 'missed slots',
    ])}`,
  );
  return duplicates === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
