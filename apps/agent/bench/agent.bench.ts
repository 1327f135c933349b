/**
 * `npm run bench:agent [-- --quick] [-- --scenario=10000x60@150 --scenario=1000x1@30 --idle-s=15 ...]`
 *
 * The whole agent as a process, with real probes: its resident memory and CPU, and how well it keeps
 * its schedule. Run `npm run build` first: the agent measured is the built one,
 * `node apps/agent/dist/main.js`, as production runs it.
 *
 * Set-up, all on 127.0.0.1: a WebSocket echo target in its own process
 * (`libs/probe/bench/echo-child.ts`, so its CPU is not the agent's), a minimal control plane in this
 * process (`bench-control-plane.ts`: Welcome, the tests as a snapshot, a ResultAck for every batch),
 * and one fresh agent process and data directory per scenario. Every test is a round trip
 * (`ping_mode: message`) to the echo target, with the shared schema's default retry policy.
 *
 * Each scenario (`<tests>x<interval_s>@<window_s>`) starts an agent, waits for its ConfigAck of the
 * tests, lets it warm up, then measures for the window: resident memory and CPU of the agent process
 * from /proc (VmRSS sampled every second, VmHWM, utime + stime), and from the results it sends, for
 * every run whose run time fell in the window (slot plus the test's stable offset, `slot-plan.ts`):
 * the delay from that run time to `started_time`, and whether each such slot was reported exactly
 * once. Results due in the window are waited for after it (up to a probe timeout and 5 s). The
 * baseline, measured first in the same run, is an agent holding no test: memory is reported against
 * it. The goals: under 150 MB with 10,000 tests (the lifetime peak VmHWM is judged), p99
 * delay under 50 ms, no missed slot. A benchmark, not a test: missed goals are printed, the exit code
 * is 0; a doubled slot or an error makes it nonzero.
 *
 * The figures are only as good as the machine is quiet: the agent, the echo target and this process
 * share its cores (their CPU is printed too), and so does anything else running (the load average is).
 * To see what dominates, profile the agent: `--agent-node-options="--cpu-prof --cpu-prof-dir=/tmp/p"`,
 * or `--heapsnapshot-signal=SIGUSR2` and `kill -USR2 <pid>` (the pid is printed).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { retryPolicySchema, TIMEOUT_MS, type Schedule } from '@wsmon/contracts';
import { AGENT_NODE_FLAGS } from '@wsmon/runtime';
import type { AgentResult, TestAssignment } from '@wsmon/proto/agent';
import { SlotPlan, createSlotSequence } from '../src/scheduler';
import { BenchControlPlane } from './bench-control-plane';
import {
  GOAL_P99_MS,
  GOAL_RSS_MB,
  delaySummary,
  forEachRun,
  goalsLine,
  mb,
  percentile,
} from './schedule-accuracy';

const ROOT = process.cwd();
const AGENT_MAIN = 'apps/agent/dist/main.js';
const ECHO_CHILD = 'libs/probe/bench/echo-child.ts';
const TOKEN = 'wsa_bench_0123456789abcdef';
/** /proc reports CPU time in USER_HZ ticks, 100 per second on Linux whatever the kernel's HZ. */
const USER_HZ = 100;
const SAMPLE_MS = 1000;
const ECHO_START_TIMEOUT_MS = 30_000;
/** From the agent's start to its ConfigAck of every test. */
const CONFIG_TIMEOUT_MS = 120_000;
/** The agent gives itself 30 s to shut down. */
const STOP_TIMEOUT_MS = 40_000;
/** After the window: a run due at its very end may take a whole probe timeout, then reach us. */
const RESULT_GRACE_MS = TIMEOUT_MS.default + 5000;
const METRICS_TIMEOUT_MS = 10_000;
/** Scenario limits: this is a benchmark of bounded length. */
const MAX_TESTS = 50_000;
const MAX_WINDOW_S = 1800;
const AGENT_LOG_LINES = 40;

interface Scenario {
  readonly tests: number;
  readonly intervalS: number;
  readonly windowS: number;
}

interface Options {
  readonly scenarios: readonly Scenario[];
  readonly idleS: number;
  readonly warmupS: number;
  readonly concurrency: number;
  readonly agentNodeOptions: readonly string[];
  /** A file that gets everything the agents write (with `--trace-gc`, say); only their last lines are kept otherwise. */
  readonly agentLog: string | undefined;
}

const USAGE = `usage: npm run bench:agent -- [--quick] [--scenario=<tests>x<interval_s>@<window_s> ...]
                               [--idle-s=S] [--warmup-s=S] [--concurrency=N] [--agent-node-options="..."]
                               [--agent-log=FILE]
defaults: --scenario=10000x60@150 --scenario=1000x1@30 --idle-s=15 --warmup-s=5 --concurrency=200
--quick:  --scenario=10000x60@65 --scenario=1000x1@10 --idle-s=5 --warmup-s=2`;

function readOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      scenario: { type: 'string', multiple: true },
      'idle-s': { type: 'string' },
      'warmup-s': { type: 'string' },
      concurrency: { type: 'string' },
      'agent-node-options': { type: 'string' },
      'agent-log': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const number = (name: string, text: string | undefined, fallback: number, min: number, max: number) => {
    const value = text === undefined ? fallback : Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`--${name} must be an integer from ${min} to ${max}\n${USAGE}`);
    }
    return value;
  };
  const scenarios = (
    values.scenario ?? (quick ? ['10000x60@65', '1000x1@10'] : ['10000x60@150', '1000x1@30'])
  )
    .flatMap((list) => list.split(','))
    .map((text): Scenario => {
      const match = /^(\d+)x(\d+)@(\d+)$/.exec(text);
      if (match === null)
        throw new Error(`--scenario=${text}: expected <tests>x<interval_s>@<window_s>\n${USAGE}`);
      return {
        tests: number('scenario tests', match[1], 0, 1, MAX_TESTS),
        intervalS: number('scenario interval_s', match[2], 0, 1, 3600),
        windowS: number('scenario window_s', match[3], 0, 1, MAX_WINDOW_S),
      };
    });
  return {
    scenarios,
    idleS: number('idle-s', values['idle-s'], quick ? 5 : 15, 1, MAX_WINDOW_S),
    warmupS: number('warmup-s', values['warmup-s'], quick ? 2 : 5, 0, 300),
    concurrency: number('concurrency', values.concurrency, 200, 1, 10_000),
    // By default the agent runs as its image runs it (docker/Dockerfile.agent's ENTRYPOINT).
    agentNodeOptions: values['agent-node-options']?.split(/\s+/).filter((option) => option !== '') ?? [
      ...AGENT_NODE_FLAGS,
    ],
    agentLog: values['agent-log'] === undefined ? undefined : resolve(values['agent-log']),
  };
}

// ---------- processes ----------

/** Children and temporary directories, cleaned up whatever happens. */
const children = new Set<ChildProcess>();
const scratchDirs = new Set<string>();

function cleanUp(): void {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface ProcFigures {
  readonly rssBytes: number;
  /** The peak resident set since the process started. */
  readonly hwmBytes: number;
  readonly cpuSeconds: number;
  /**
   * How long its main thread (the event loop) was ready to run but waited for a CPU: time lost to
   * the other processes of the machine, not to the agent's own work.
   */
  readonly runQueueSeconds: number;
}

/** Memory and CPU time of a process from /proc; undefined once it is gone. */
function readProc(pid: number): ProcFigures | undefined {
  let status: string;
  let stat: string;
  let schedstat: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    schedstat = readFileSync(`/proc/${pid}/schedstat`, 'utf8');
  } catch {
    return undefined;
  }
  const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
  // The fields after the command name (which may hold spaces and parentheses) start at field 3; utime
  // and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    rssBytes: kB('VmRSS'),
    hwmBytes: kB('VmHWM'),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / USER_HZ,
    // Nanoseconds on a CPU, waiting on a run queue, time slices.
    runQueueSeconds: Number(schedstat.split(' ')[1]) / 1e9,
  };
}

interface EchoTarget {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** The echo server of the probe benchmark in its own process, run from its source by tsx. */
async function startEchoTarget(): Promise<EchoTarget> {
  const child = fork(join(ROOT, ECHO_CHILD), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the echo target did not start in time')),
      ECHO_START_TIMEOUT_MS,
    );
    child.once('exit', (code) => reject(new Error(`the echo target exited (${code}) before it was ready`)));
    child.on('message', (message: unknown) => {
      const ready = message as { type?: unknown; port?: unknown } | null;
      if (ready?.type === 'ready' && typeof ready.port === 'number') {
        clearTimeout(timer);
        resolve(ready.port);
      }
    });
  });
  return {
    port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send('stop');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface AgentProcess {
  readonly pid: number;
  /** The last lines of its stdout and stderr, for when something goes wrong. */
  readonly log: string[];
  /** `http://127.0.0.1:<port>` of its local HTTP server, from its log (logged before it connects). */
  readonly httpUrl: Promise<string>;
  /** Rejects when the process exits (before `stop`). */
  readonly died: Promise<never>;
  /** SIGTERM, then SIGKILL if it does not exit in time; resolves to the exit code. */
  stop(): Promise<number | null>;
}

function startAgent(controlPlane: string, dataDir: string, options: Options): AgentProcess {
  const child = spawn(process.execPath, [...options.agentNodeOptions, join(ROOT, AGENT_MAIN)], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      WSMON_CONTROL_PLANE: controlPlane,
      WSMON_TOKEN: TOKEN,
      WSMON_INSECURE: '1',
      WSMON_AGENT_DATA_DIR: dataDir,
      WSMON_AGENT_HTTP_PORT: '0',
      WSMON_AGENT_CONCURRENCY: String(options.concurrency),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const log: string[] = [];
  let resolveUrl: (url: string) => void = () => undefined;
  const httpUrl = new Promise<string>((resolve) => (resolveUrl = resolve));
  const partial = { stdout: '', stderr: '' };
  const keep = (stream: keyof typeof partial) => (chunk: Buffer) => {
    if (options.agentLog !== undefined) appendFileSync(options.agentLog, chunk);
    const lines = (partial[stream] + chunk.toString()).split('\n');
    partial[stream] = lines.pop()!;
    for (const line of lines) {
      if (line === '') continue;
      log.push(line);
      if (log.length > AGENT_LOG_LINES) log.shift();
      const served = /^wsmon agent: serving .* on (http:\/\/\S+)$/.exec(line);
      if (served) resolveUrl(served[1]!);
    }
  };
  child.stdout.on('data', keep('stdout'));
  child.stderr.on('data', keep('stderr'));
  let stopping = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const died = exited.then((code) => {
    if (stopping) return new Promise<never>(() => undefined);
    throw new Error(`the agent exited (${code}) during the scenario:\n  ${log.join('\n  ')}`);
  });
  died.catch(() => undefined);
  return {
    pid: child.pid!,
    log,
    httpUrl,
    died,
    stop: async () => {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The agent's own counters from its /metrics: skipped slots by reason, probes by kind and outcome. */
async function agentCounters(httpUrl: string): Promise<Map<string, number>> {
  const text = await (
    await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(METRICS_TIMEOUT_MS) })
  ).text();
  const counters = new Map<string, number>();
  for (const match of text.matchAll(
    /^wsmon_agent_(scheduler_skipped_slots_total|probes_total)\{([^}]*)\} (\d+)$/gm,
  )) {
    counters.set(`${match[1]}{${match[2]}}`, Number(match[3]));
  }
  return counters;
}

// ---------- measurement ----------

interface Usage {
  readonly windowMs: number;
  readonly rssSteadyBytes: number;
  readonly rssWindowPeakBytes: number;
  readonly hwmBytes: number;
  readonly agentCpuSeconds: number;
  readonly agentRunQueueSeconds: number;
  readonly echoCpuSeconds: number;
  readonly echoRunQueueSeconds: number;
  readonly benchCpuSeconds: number;
}

/** Samples the agent's memory every second for `windowMs`, and the CPU of the three processes over it. */
async function measureUsage(agent: AgentProcess, echo: EchoTarget, windowMs: number): Promise<Usage> {
  const agentAt = () => {
    const figures = readProc(agent.pid);
    if (figures === undefined) throw new Error(`the agent (pid ${agent.pid}) is gone`);
    return figures;
  };
  const startMs = performance.now();
  const agentStart = agentAt();
  const echoStart = readProc(echo.pid);
  const benchStart = process.cpuUsage();
  const rss: number[] = [agentStart.rssBytes];
  for (let elapsedMs = 0; elapsedMs < windowMs; elapsedMs = performance.now() - startMs) {
    await Promise.race([sleep(Math.min(SAMPLE_MS, windowMs - elapsedMs)), agent.died]);
    rss.push(agentAt().rssBytes);
  }
  const agentEnd = agentAt();
  const echoEnd = readProc(echo.pid);
  const bench = process.cpuUsage(benchStart);
  const sorted = Float64Array.from(rss).sort();
  return {
    windowMs: performance.now() - startMs,
    rssSteadyBytes: percentile(sorted, 0.5),
    rssWindowPeakBytes: sorted[sorted.length - 1]!,
    hwmBytes: agentEnd.hwmBytes,
    agentCpuSeconds: agentEnd.cpuSeconds - agentStart.cpuSeconds,
    agentRunQueueSeconds: agentEnd.runQueueSeconds - agentStart.runQueueSeconds,
    echoCpuSeconds: (echoEnd?.cpuSeconds ?? Number.NaN) - (echoStart?.cpuSeconds ?? Number.NaN),
    echoRunQueueSeconds:
      (echoEnd?.runQueueSeconds ?? Number.NaN) - (echoStart?.runQueueSeconds ?? Number.NaN),
    benchCpuSeconds: (bench.user + bench.system) / 1e6,
  };
}

/**
 * The results an agent sends, checked against the schedule: each is matched to its test's run time
 * (slot plus the test's offset) and counted once per slot. Results sent again (a sequence already
 * seen, after a reconnect) are not results of a second run; a second result of a test's slot is.
 */
class ResultLedger {
  /** Results of a test arrive in slot order: a slot at or before the last one is a doubled slot. */
  private readonly lastSlotMs: Float64Array;
  private readonly indexOf: Map<string, number>;
  private readonly plans: SlotPlan[];
  private maxSequence = 0;
  private window: { readonly fromMs: number; readonly toMs: number } | undefined;
  private readonly delays: number[] = [];
  private readonly durations: number[] = [];
  private readonly failures = new Map<string, number>();
  received = 0;
  resent = 0;
  doubled = 0;
  unknown = 0;
  beforeWindow = 0;
  outsideWindow = 0;
  /** Distinct slots reported whose run time fell in the window. */
  seen = 0;
  successes = 0;
  expected = 0;

  constructor(
    private readonly testIds: readonly string[],
    private readonly schedule: Schedule,
  ) {
    const sequence = createSlotSequence(schedule);
    this.indexOf = new Map(testIds.map((id, index) => [id, index]));
    this.plans = testIds.map((id) => new SlotPlan(id, sequence));
    this.lastSlotMs = new Float64Array(testIds.length).fill(Number.NEGATIVE_INFINITY);
  }

  /** From now on, results of runs due in [fromMs, toMs] count; every one of them is expected. */
  openWindow(fromMs: number, toMs: number): void {
    this.window = { fromMs, toMs };
    this.expected = forEachRun(this.testIds, this.schedule, fromMs, toMs);
  }

  add(result: AgentResult): void {
    this.received++;
    if (result.sequence <= this.maxSequence) {
      this.resent++;
      return;
    }
    this.maxSequence = result.sequence;
    const index = this.indexOf.get(result.test_id);
    const slotMs = result.slot_time?.getTime() ?? Number.NaN;
    const startedMs = result.started_time?.getTime() ?? Number.NaN;
    if (index === undefined || Number.isNaN(slotMs) || Number.isNaN(startedMs)) {
      this.unknown++;
      return;
    }
    if (slotMs <= this.lastSlotMs[index]!) {
      this.doubled++;
      return;
    }
    this.lastSlotMs[index] = slotMs;
    if (this.window === undefined) {
      this.beforeWindow++;
      return;
    }
    const runAtMs = this.plans[index]!.runAtMs(slotMs);
    if (runAtMs < this.window.fromMs || runAtMs > this.window.toMs) {
      this.outsideWindow++;
      return;
    }
    this.seen++;
    this.delays.push(startedMs - runAtMs);
    this.durations.push(result.total_ms);
    if (result.success) this.successes++;
    else this.failures.set(result.reason, (this.failures.get(result.reason) ?? 0) + 1);
  }

  /** Resolves once every expected slot is reported, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.seen < this.expected && performance.now() < deadline) await sleep(100);
  }

  sortedDelays(): Float64Array {
    return Float64Array.from(this.delays).sort();
  }

  /** How long the probes took (`total_ms`), ascending. */
  sortedDurations(): Float64Array {
    return Float64Array.from(this.durations).sort();
  }

  failureSummary(): string {
    return [...this.failures].map(([reason, count]) => `${reason || '(none)'} ${count}`).join(', ');
  }
}

interface ScenarioOutcome {
  readonly usage: Usage;
  readonly ledger: ResultLedger;
  readonly configuredMs: number;
  readonly streams: number;
  readonly counters: Map<string, number>;
  readonly exitCode: number | null;
}

async function runScenario(
  plane: BenchControlPlane,
  echo: EchoTarget,
  scenario: Scenario,
  options: Options,
): Promise<ScenarioOutcome> {
  const schedule: Schedule = { interval_s: scenario.intervalS };
  const retry = retryPolicySchema.parse({});
  const testIds = Array.from({ length: scenario.tests }, () => randomUUID());
  const assignments: TestAssignment[] = testIds.map((test_id, i) => ({
    test_id,
    revision: 1,
    name: `bench-${i}`,
    probe: {
      url: `ws://127.0.0.1:${echo.port}/`,
      interpretation: 'round_trip_latency',
      ping_mode: 'message',
      send_message: 'x',
      expect_message: 'x',
    },
    schedule,
    retry,
  }));
  const ledger = new ResultLedger(testIds, schedule);
  plane.onResult = (result) => ledger.add(result);
  const streamsBefore = plane.streams;
  const dataDir = await mkdtemp(join(tmpdir(), 'wsmon-agent-bench-'));
  scratchDirs.add(dataDir);
  const configured = plane.assign(assignments, CONFIG_TIMEOUT_MS);
  const startedMs = performance.now();
  const agent = startAgent(plane.address, dataDir, options);
  console.log(`  agent pid ${agent.pid}, data in ${dataDir}`);
  try {
    await Promise.race([configured, agent.died]);
    const configuredMs = performance.now() - startedMs;
    await Promise.race([sleep(options.warmupS * 1000), agent.died]);
    const fromMs = Date.now();
    ledger.openWindow(fromMs, fromMs + scenario.windowS * 1000);
    const usage = await measureUsage(agent, echo, scenario.windowS * 1000);
    if (scenario.tests > 0) await Promise.race([ledger.settled(RESULT_GRACE_MS), agent.died]);
    const counters = await agentCounters(
      await Promise.race([
        agent.httpUrl,
        sleep(METRICS_TIMEOUT_MS).then(() =>
          Promise.reject(new Error('the agent never said where it serves')),
        ),
      ]),
    );
    const exitCode = await agent.stop();
    return { usage, ledger, configuredMs, streams: plane.streams - streamsBefore, counters, exitCode };
  } finally {
    await agent.stop();
    rmSync(dataDir, { recursive: true, force: true });
    scratchDirs.delete(dataDir);
    plane.onResult = () => undefined;
  }
}

// ---------- report ----------

const share = (seconds: number, windowMs: number) => `${((100 * seconds * 1000) / windowMs).toFixed(1)}%`;
const percentOfCore = (cpuSeconds: number, windowMs: number) => `${share(cpuSeconds, windowMs)} of one core`;
const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

function reportScenario(scenario: Scenario, outcome: ScenarioOutcome, idle: Usage): boolean {
  const { usage, ledger, counters } = outcome;
  const sorted = ledger.sortedDelays();
  const durations = ledger.sortedDurations();
  const p99 = percentile(sorted, 0.99);
  const missed = ledger.expected - ledger.seen;
  const windowS = usage.windowMs / 1000;
  const counter = (name: string) => counters.get(name) ?? 0;
  console.log(
    `agent: ${scenario.tests} tests every ${scenario.intervalS} s for ${scenario.windowS} s ` +
      `(configured ${(outcome.configuredMs / 1000).toFixed(1)} s after its start)`,
  );
  console.log(
    `  rss: steady ${mb(usage.rssSteadyBytes)} MB (${(usage.rssSteadyBytes / idle.rssSteadyBytes).toFixed(2)}× idle), ` +
      `window peak ${mb(usage.rssWindowPeakBytes)} MB, lifetime peak (VmHWM) ${mb(usage.hwmBytes)} MB ` +
      `(${(usage.hwmBytes / idle.hwmBytes).toFixed(2)}× idle; goal < ${GOAL_RSS_MB})`,
  );
  console.log(
    `  cpu: ${usage.agentCpuSeconds.toFixed(2)} s (${percentOfCore(usage.agentCpuSeconds, usage.windowMs)}; ` +
      `idle ${percentOfCore(idle.agentCpuSeconds, idle.windowMs)}), ` +
      `${((1000 * usage.agentCpuSeconds) / Math.max(1, ledger.seen)).toFixed(2)} ms per probe`,
  );
  console.log(`  delay run time → started_time: ${delaySummary(sorted)}`);
  console.log(
    `  slots due in the window: ${ledger.expected} expected, ${ledger.seen} reported, missed ${missed}, ` +
      `doubled ${ledger.doubled}`,
  );
  console.log(
    `  probes: ${(ledger.seen / windowS).toFixed(1)}/s, success ${ledger.successes}/${ledger.seen} ` +
      `(${((100 * ledger.successes) / Math.max(1, ledger.seen)).toFixed(2)}%)` +
      (ledger.successes < ledger.seen ? `; failures by reason: ${ledger.failureSummary()}` : '') +
      `; duration p50 ${percentile(durations, 0.5).toFixed(1)} ms, p99 ${percentile(durations, 0.99).toFixed(1)} ms`,
  );
  console.log(
    `  results received ${ledger.received}: before the window ${ledger.beforeWindow}, due after it ` +
      `${ledger.outsideWindow}, sent again ${ledger.resent}, unknown ${ledger.unknown}; streams ${outcome.streams}`,
  );
  console.log(
    `  agent's counters: skipped slots missed ${counter('scheduler_skipped_slots_total{reason="missed"}')}, ` +
      `overlap ${counter('scheduler_skipped_slots_total{reason="overlap"}')}, ` +
      `capacity ${counter('scheduler_skipped_slots_total{reason="capacity"}')}; ` +
      `scheduled probes abandoned ${counter('probes_total{kind="scheduled",outcome="abandoned"}')}, ` +
      `error ${counter('probes_total{kind="scheduled",outcome="error"}')}; exit code ${outcome.exitCode}`,
  );
  console.log(
    `  beside it: echo target ${percentOfCore(usage.echoCpuSeconds, usage.windowMs)}, ` +
      `this process (control plane) ${percentOfCore(usage.benchCpuSeconds, usage.windowMs)}; load ${load()}`,
  );
  console.log(
    `  waiting for a CPU (other processes): the agent's event loop ${share(usage.agentRunQueueSeconds, usage.windowMs)} ` +
      `of the window, the echo target's ${share(usage.echoRunQueueSeconds, usage.windowMs)}`,
  );
  console.log(
    `  ${goalsLine([
      usage.hwmBytes / 2 ** 20 < GOAL_RSS_MB ? null : 'rss',
      p99 < GOAL_P99_MS ? null : 'p99 delay',
      missed === 0 ? null : 'missed slots',
    ])}`,
  );
  return ledger.doubled === 0;
}

/** The newest source the agent's bundle is built from, to warn about a stale build. */
function newestSourceMs(): number {
  let newest = 0;
  for (const dir of [
    'apps/agent/src',
    'libs/contracts/src',
    'libs/probe/src',
    'libs/proto/src',
    'libs/runtime/src',
  ]) {
    const base = join(ROOT, dir);
    if (!existsSync(base)) continue;
    for (const file of readdirSync(base, { recursive: true, encoding: 'utf8' })) {
      if (file.endsWith('.ts') && !file.includes('.spec'))
        newest = Math.max(newest, statSync(join(base, file)).mtimeMs);
    }
  }
  return newest;
}

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2));
  const agentMain = resolve(ROOT, AGENT_MAIN);
  if (!existsSync(agentMain)) throw new Error(`${AGENT_MAIN} is missing: run \`npm run build\` first`);
  const builtMs = statSync(agentMain).mtimeMs;
  // Each scenario's waits are bounded: the start and configuration, the warm-up, the window, the late
  // results, the metrics, the stop. Their sum, with the echo target's start, bounds the whole run.
  const scenarioLimitS = (windowS: number) =>
    (CONFIG_TIMEOUT_MS + RESULT_GRACE_MS + METRICS_TIMEOUT_MS + STOP_TIMEOUT_MS) / 1000 +
    options.warmupS +
    windowS;
  const totalS =
    ECHO_START_TIMEOUT_MS / 1000 +
    scenarioLimitS(options.idleS) +
    options.scenarios.reduce((sum, scenario) => sum + scenarioLimitS(scenario.windowS), 0);
  // Whatever goes wrong, nothing outlives this.
  setTimeout(() => {
    console.error(`bench:agent: still running after ${totalS} s: stopping`);
    cleanUp();
    process.exit(1);
  }, totalS * 1000).unref();

  console.log(
    `bench:agent: node ${process.version}, ${cpus().length} cpus, load ${load()}; ` +
      `agent ${AGENT_MAIN} built ${new Date(builtMs).toISOString()}, concurrency ${options.concurrency}`,
  );
  if (newestSourceMs() > builtMs) {
    console.log('  warning: sources changed since the build: `npm run build` to measure them');
  }
  const echo = await startEchoTarget();
  const plane = await BenchControlPlane.start(TOKEN);
  let ok = true;
  try {
    console.log(`agent: idle (no test) for ${options.idleS} s: the baseline`);
    const idle = await runScenario(plane, echo, { tests: 0, intervalS: 60, windowS: options.idleS }, options);
    console.log(
      `  rss: steady ${mb(idle.usage.rssSteadyBytes)} MB, lifetime peak (VmHWM) ${mb(idle.usage.hwmBytes)} MB; ` +
        `cpu ${idle.usage.agentCpuSeconds.toFixed(2)} s (${percentOfCore(idle.usage.agentCpuSeconds, idle.usage.windowMs)})`,
    );
    for (const scenario of options.scenarios) {
      console.log(`agent: starting ${scenario.tests} tests every ${scenario.intervalS} s`);
      const outcome = await runScenario(plane, echo, scenario, options);
      ok = reportScenario(scenario, outcome, idle.usage) && ok;
    }
  } finally {
    plane.close();
    await echo.stop();
  }
  return ok ? 0 : 1;
}

process.on('exit', cleanUp);
process.on('SIGINT', () => {
  cleanUp();
  process.exit(130);
});
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
