/**
 * `npm run bench:ingest [-- --quick] [-- --rows=100000 --batch=1000 --callers=4 --agents=4 --window=5000
 *  --rounds=3 --tests=1000 --locations=2 --fsync --budget-s=120 --profile-dir=/tmp/prof]`
 *
 * How fast results go into PostgreSQL: through the real control plane from agents streaming over gRPC,
 * and through ResultsService.ingest in-process, each against a raw COPY of the same rows into the same
 * table, the fastest way in there is. One throwaway PostgreSQL (libs/testing), one database: the benchmark
 * migrates it as the control plane does, creates `--tests` tests run from `--locations` locations (in SQL,
 * with their test_locations links), then starts the built control plane (`apps/control-plane/dist/main.js`)
 * as a child process on that same database and mints one agent token per location through its REST API.
 * `--agents` agents share the locations (agent i belongs to location i mod L; test t of a location runs on
 * its agent t mod n). `--rows` rows are generated once: realistic ProbeResult documents (a round trip over
 * TLS, ~1.6 KiB of JSON, the timings varying from row to row) over consecutive minute slots.
 *
 * - phase A (copy): the rows, pre-rendered in COPY's text format, through one `COPY results … FROM STDIN`
 *   (pg-copy-streams).
 * - phase B (ingest): the same rows as AgentResult batches of `--batch` results (one agent each, as it
 *   sends them, `result_json` as bytes), pre-built, taken by `--callers` concurrent callers of
 *   ResultsService.ingest in this process (one transaction each, awaited as the stream awaits it).
 * - phase C (stream): the same batches, each agent's encoded once beforehand as the ConnectRequest messages
 *   it writes, sent by `--agents` simulated agents over real gRPC (one channel, so one HTTP/2 connection,
 *   each) to the control plane. Each agent opens AgentService.Connect with its location's token, says
 *   Hello (`config.delta`), acknowledges its configuration and answers heartbeats; once every agent is
 *   synchronised and the configuration traffic has settled, all send their batches as fast as the
 *   stream's backpressure lets them, with at most `--window` results unacknowledged (the agent's own
 *   default), and the phase ends with the ResultAck of every agent's last sequence. Then each half-closes
 *   and the call must end with OK. Timed: from the first send to the last acknowledgement.
 *
 * The control plane's roll-up and alert evaluation, which read what ingest wrote, are held off throughout
 * (this process holds their advisory locks, as another replica doing them would): ingest alone is
 * measured, as the raw COPY is; bench:aggregate measures rolling up.
 * B and C run once untimed first (a warm-up: the control plane in service has long been warm). Then each
 * round truncates `results` and `rollup_queue` (the partitions stay) and checkpoints before every phase,
 * runs the phases in the order A B C, the next round C B A (so a drift during the run favours none of them), and checks
 * the row count after each. Reported: rows/s of each phase (median of rounds), ingest/copy and stream/copy
 * (medians of the ratios of rounds, each measured within one round), and CPU time per row (/proc): this
 * process (the agents in phase C), the control plane (its main thread, and its other threads: V8's garbage
 * collector and compilers), PostgreSQL (the postmaster and its processes, ended backends included) and the
 * whole machine (busy time of every CPU: what none of them used is other work on the machine). Goals: ≥ 50,000
 * rows/s and ≥ 0.4 of copy. A benchmark, not a test: missed goals are printed and the exit code is 0; a
 * wrong row count or an error makes it nonzero. PostgreSQL runs without fsync unless `--fsync` (the data
 * is thrown away; with it, commits wait for the disk, which favours the one-transaction COPY).
 * `--profile-dir` profiles the control plane's main thread (V8's sampling profiler, as `node --cpu-prof`, which
 * NODE_OPTIONS refuses) during each phase C only: a preload written into that directory toggles the profiler on
 * SIGUSR2, and each timed phase C leaves `phase-c-<n>.cpuprofile` there (open it in Chrome DevTools). It slows
 * the control plane by a few per cent.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import {
  Client as GrpcClient,
  credentials,
  Metadata,
  status,
  type ClientDuplexStream,
  type StatusObject,
} from '@grpc/grpc-js';
import { AgentServiceService, ConnectRequest, ConnectResponse } from '@wsmon/proto/agent';
import { testInputSchema } from '@wsmon/contracts';
import { goalMark, median, startTestPostgres, table } from '@wsmon/testing';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DataSource } from 'typeorm';
import { ROLLUP_LOCK } from '../src/aggregation/aggregation.repository';
import { EVALUATION_LOCK } from '../src/alerts/alerts.repository';
import { LocalChangeBus } from '../src/database/change-bus';
import { dataSourceOptions } from '../src/database/data-source-options';
import { LocationEntity } from '../src/locations/location.entity';
import { ResultEntity } from '../src/results/result.entity';
import { ResultsRepository } from '../src/results/results.repository';
import { ResultsService } from '../src/results/results.service';
import { RunResultEntity } from '../src/results/run.entity';
import { TestEntity } from '../src/tests/test.entity';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from '../e2e/support/control-plane-process';
import {
  COPY_COLUMNS,
  SLOT_MS,
  agentResultBatches,
  copyText,
  encodedAgentStreams,
  planDays,
  planSize,
  plannedResults,
  type AgentBatch,
  type EncodedAgentStream,
  type RowPlan,
} from './agent-results';

const GOAL_RATE = 50_000;
const GOAL_RATIO = 0.4;
const COPY_CHUNK_ROWS = 1000;
/** gRPC's default receive limit, which the control plane keeps: an encoded batch must stay under it. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** The agent's default (apps/agent result-sender `maxUnackedResults`): results sent and not yet acknowledged. */
const AGENT_UNACKED_RESULTS = 5000;
const CONTROL_PLANE_ENTRY = 'apps/control-plane/dist/main.js';

// ---------- options ----------

interface Options {
  readonly quick: boolean;
  readonly rows: number;
  readonly batch: number;
  readonly callers: number;
  readonly agents: number;
  readonly window: number;
  readonly rounds: number;
  readonly tests: number;
  readonly locations: number;
  readonly fsync: boolean;
  readonly budgetMs: number;
  readonly profileDir: string | undefined;
}

const USAGE = `usage: npm run bench:ingest -- [--quick] [--rows=N] [--batch=N] [--callers=N] [--agents=N]
                                [--window=N] [--rounds=N] [--tests=N] [--locations=N] [--fsync]
                                [--budget-s=S] [--profile-dir=DIR]
Every option may also come from the environment: WSMON_BENCH_ROWS=200000, WSMON_BENCH_FSYNC=1, ...`;

function readOptions(argv: string[]): Options {
  const spec = {
    quick: { type: 'boolean' },
    fsync: { type: 'boolean' },
    help: { type: 'boolean' },
    rows: { type: 'string' },
    batch: { type: 'string' },
    callers: { type: 'string' },
    agents: { type: 'string' },
    window: { type: 'string' },
    rounds: { type: 'string' },
    tests: { type: 'string' },
    locations: { type: 'string' },
    'budget-s': { type: 'string' },
    'profile-dir': { type: 'string' },
  } as const;
  const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const env = (name: string) => process.env[`WSMON_BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const flag = (name: 'quick' | 'fsync') => values[name] ?? ['1', 'true', 'yes'].includes(env(name) ?? '');
  const quick = flag('quick');
  const int = (
    name: 'rows' | 'batch' | 'callers' | 'agents' | 'window' | 'rounds' | 'tests' | 'locations' | 'budget-s',
    fallback: number,
    min: number,
    max: number,
  ) => {
    const raw = values[name] ?? env(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max)
      throw new Error(`--${name} must be an integer from ${min} to ${max}\n${USAGE}`);
    return value;
  };
  // Upper bounds keep the run finite in count, memory and time whatever is passed.
  const locations = int('locations', 2, 1, 100);
  const agents = int('agents', Math.max(4, locations), 1, 128);
  if (agents < locations) throw new Error(`--agents must be at least --locations (${locations})\n${USAGE}`);
  return {
    quick,
    fsync: flag('fsync'),
    rows: int('rows', quick ? 20_000 : 100_000, 1000, 1_000_000),
    batch: int('batch', 1000, 1, 10_000),
    callers: int('callers', 4, 1, 32),
    agents,
    window: int('window', AGENT_UNACKED_RESULTS, 1, 1_000_000),
    rounds: int('rounds', quick ? 1 : 3, 1, 10),
    tests: int('tests', 1000, 1, 100_000),
    locations,
    budgetMs: int('budget-s', quick ? 30 : 120, 1, 900) * 1000,
    profileDir: values['profile-dir'] ?? env('profile-dir'),
  };
}

// ---------- the database ----------

const locationName = (index: number) => `bench-${index + 1}`;

/**
 * Every test runs from every location. The test's configuration is what the REST API would store (the
 * shared schema, defaults applied); the control plane's catalog loads the tests when it starts.
 */
async function createTestsAndLocations(dataSource: DataSource, plan: RowPlan): Promise<void> {
  const locationIds = plan.locations.map((l) => l.id);
  const locationNames = plan.locations.map((_, i) => locationName(i));
  const input = testInputSchema.parse({
    name: 'bench',
    probe: { url: 'wss://stream.example.com/socket' },
    schedule: { interval_s: 60 },
    locations: locationNames,
  });
  await dataSource.query(
    `INSERT INTO locations (id, name, kind) SELECT id, name, 'private'
       FROM unnest($1::uuid[], $2::text[]) AS l(id, name)`,
    [locationIds, locationNames],
  );
  await dataSource.query(
    `INSERT INTO tests (id, name, probe, schedule, retry, alert, location_names, revision)
     SELECT id, 'bench ' || n, $2, $3, $4, $5, $6::text[], 1
       FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
    [
      plan.testIds,
      JSON.stringify(input.probe),
      JSON.stringify(input.schedule),
      JSON.stringify(input.retry),
      JSON.stringify(input.alert),
      locationNames,
    ],
  );
  await dataSource.query(
    `INSERT INTO test_locations (test_id, location_id)
     SELECT t.id, l.id FROM unnest($1::uuid[]) AS t(id) CROSS JOIN unnest($2::uuid[]) AS l(id)`,
    [plan.testIds, locationIds],
  );
}

async function resetResults(dataSource: DataSource): Promise<void> {
  await dataSource.query('TRUNCATE results, rollup_queue');
  await dataSource.query('CHECKPOINT');
  // The garbage of the phase before (phase B's especially) is collected now, not during the next one
  // (scripts/bench.mjs runs benchmarks with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
}

async function countResults(dataSource: DataSource): Promise<number> {
  const [row] = await dataSource.query<{ count: number }[]>('SELECT count(*)::int AS count FROM results');
  return row!.count;
}

// ---------- CPU ----------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const ticksToUs = (ticks: number) => (ticks * 1e6) / CLOCK_TICKS_PER_S;

interface ProcStat {
  readonly ppid: number;
  readonly comm: string;
  /** utime + stime, µs. */
  readonly ownUs: number;
  /** cutime + cstime: the children it waited for, µs. */
  readonly reapedChildrenUs: number;
}

/** A /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat file. */
function readStat(path: string): ProcStat {
  const stat = readFileSync(path, 'utf8');
  const close = stat.lastIndexOf(')');
  // After the command name (which may hold spaces): state is field 3, ppid 4, utime 14 … cstime 17.
  const fields = stat.slice(close + 2).split(' ');
  return {
    ppid: Number(fields[1]),
    comm: stat.slice(stat.indexOf('(') + 1, close),
    ownUs: ticksToUs(Number(fields[11]) + Number(fields[12])),
    reapedChildrenUs: ticksToUs(Number(fields[13]) + Number(fields[14])),
  };
}

/** Every process of the machine (pid and stat); those that end meanwhile are left out. */
function processes(): { pid: number; stat: ProcStat }[] {
  const found: { pid: number; stat: ProcStat }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      found.push({ pid: Number(entry), stat: readStat(`/proc/${entry}/stat`) });
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

/** The pid of this process's child whose command line holds `marker` (the control plane). */
function childPid(marker: string): number | undefined {
  for (const { pid, stat } of processes()) {
    if (stat.ppid !== process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) return pid;
    } catch {
      /* gone meanwhile */
    }
  }
  return undefined;
}

/** The throwaway PostgreSQL's postmaster: this process's child named `postgres`. */
const postmasterPid = (): number | undefined =>
  processes().find(({ stat }) => stat.ppid === process.pid && stat.comm === 'postgres')?.pid;

interface CpuPids {
  readonly controlPlane: number | undefined;
  readonly postmaster: number | undefined;
}

interface CpuSample {
  /** This process, µs. */
  readonly selfUs: number;
  /** The control plane: all its threads, and its main (JavaScript) thread, µs. */
  readonly controlPlaneUs: number;
  readonly controlPlaneMainUs: number;
  /** Every CPU of the machine, busy (not idle, not waiting for I/O), µs. */
  readonly machineUs: number;
}

/** The postmaster and its processes: pid to CPU µs (their own, and that of the children they waited for). */
function postgresProcesses(postmaster: number | undefined): Map<number, number> {
  const found = new Map<number, number>();
  if (postmaster === undefined) return found;
  for (const { pid, stat } of processes()) {
    if (pid === postmaster || stat.ppid === postmaster) found.set(pid, stat.ownUs + stat.reapedChildrenUs);
  }
  return found;
}

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

/**
 * PostgreSQL's CPU once the processes that started since `before` ended and were waited for (a COPY's
 * backend exits after its client closed): their time then counts in the postmaster's. Bounded: 500 ms.
 */
async function postgresUsSettled(postmaster: number | undefined, before: ReadonlyMap<number, number>) {
  for (let i = 0; ; i++) {
    const now = postgresProcesses(postmaster);
    if (i >= 50 || [...now.keys()].every((pid) => before.has(pid))) return sum(now.values());
    await sleep(10);
  }
}

function sampleCpu(pids: CpuPids): CpuSample {
  const self = process.cpuUsage();
  // user nice system idle iowait irq softirq steal (guest time is inside user already).
  const machine = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1, 9).map(Number);
  let controlPlaneUs = 0;
  let controlPlaneMainUs = 0;
  const pid = pids.controlPlane;
  if (pid !== undefined) {
    try {
      // The process's total includes threads that ended; its main thread's task has the same id.
      controlPlaneUs = readStat(`/proc/${pid}/stat`).ownUs;
      controlPlaneMainUs = readStat(`/proc/${pid}/task/${pid}/stat`).ownUs;
    } catch {
      /* it exited: the phase fails anyway */
    }
  }
  return {
    selfUs: self.user + self.system,
    controlPlaneUs,
    controlPlaneMainUs,
    machineUs: ticksToUs(machine.reduce((total, v, i) => (i === 3 || i === 4 ? total : total + v), 0)),
  };
}

// ---------- the phases ----------

interface PhaseResult {
  readonly rows: number;
  readonly ms: number;
  readonly rate: number;
  /** CPU time (user + system) per row, µs: this process (the agents in phase C). */
  readonly cpuUsPerRow: number;
  /** The control plane, all threads and its main thread. */
  readonly controlPlaneUsPerRow: number;
  readonly controlPlaneMainUsPerRow: number;
  readonly postgresUsPerRow: number;
  /** Every CPU of the machine: the processes above, and anything else running meanwhile. */
  readonly machineUsPerRow: number;
}

async function timed(rows: number, pids: CpuPids, run: () => Promise<void>): Promise<PhaseResult> {
  const postgresBefore = postgresProcesses(pids.postmaster);
  const before = sampleCpu(pids);
  const start = performance.now();
  await run();
  const ms = performance.now() - start;
  const after = sampleCpu(pids);
  const postgresUs =
    (await postgresUsSettled(pids.postmaster, postgresBefore)) - sum(postgresBefore.values());
  const perRow = (key: keyof CpuSample) => (after[key] - before[key]) / rows;
  return {
    rows,
    ms,
    rate: (rows / ms) * 1000,
    cpuUsPerRow: perRow('selfUs'),
    controlPlaneUsPerRow: perRow('controlPlaneUs'),
    controlPlaneMainUsPerRow: perRow('controlPlaneMainUs'),
    postgresUsPerRow: postgresUs / rows,
    machineUsPerRow: perRow('machineUs'),
  };
}

function copyPhase(
  url: string,
  chunks: readonly Buffer[],
  rows: number,
  pids: CpuPids,
): Promise<PhaseResult> {
  return timed(rows, pids, async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await pipeline(
        Readable.from(chunks),
        client.query(copyFrom(`COPY results (${COPY_COLUMNS}) FROM STDIN`)),
      );
    } finally {
      await client.end();
    }
  });
}

function ingestPhase(
  service: ResultsService,
  batches: readonly AgentBatch[],
  rows: number,
  callers: number,
  pids: CpuPids,
): Promise<PhaseResult> {
  return timed(rows, pids, async () => {
    let next = 0;
    let inserted = 0;
    const caller = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        // Awaited first, then added: `inserted += await …` would add to a stale total.
        const outcome = await service.ingest(batch.locationId, batch.agentId, batch.results);
        inserted += outcome.inserted;
      }
    };
    await Promise.all(Array.from({ length: callers }, caller));
    if (inserted !== rows) throw new Error(`ingest reported ${inserted} rows inserted, expected ${rows}`);
  });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const encodeRequest = (request: ConnectRequest): Buffer => {
  const bytes = ConnectRequest.encode(request).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
};

/**
 * One agent on its own channel: Hello, configuration acknowledged, heartbeats answered, then its
 * pre-encoded batches written as backpressure and its window of unacknowledged results allow.
 * Its sequences are 1…n without gaps, so `sent - acked` is the number of results unacknowledged.
 */
class SimulatedAgent {
  readonly synchronised: Promise<void>;
  /** Resolves with the ResultAck of the last sequence. */
  readonly done: Promise<void>;
  /** The call's final status. */
  readonly ended: Promise<StatusObject>;
  /** performance.now() of the last configuration message received. */
  lastConfigAt = performance.now();
  private readonly call: ClientDuplexStream<Buffer, ConnectResponse>;
  private readonly lastSequence: number;
  private next = 0;
  private sent = 0;
  private acked = 0;
  private awaitingDrain = false;
  private finished = false;
  private resolveSynchronised!: () => void;
  private resolveDone!: () => void;
  private rejectAll!: (error: Error) => void;

  constructor(
    client: GrpcClient,
    token: string,
    private readonly stream: EncodedAgentStream,
    private readonly window: number,
  ) {
    this.lastSequence = stream.lastSequences[stream.lastSequences.length - 1] ?? 0;
    let rejectSynchronised!: (error: Error) => void;
    let rejectDone!: (error: Error) => void;
    this.synchronised = new Promise((resolve, reject) => {
      this.resolveSynchronised = resolve;
      rejectSynchronised = reject;
    });
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      rejectDone = reject;
    });
    // Whoever does not await one of them must not see an unhandled rejection.
    this.synchronised.catch(() => undefined);
    this.done.catch(() => undefined);
    this.rejectAll = (error) => {
      rejectSynchronised(error);
      rejectDone(error);
    };
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    this.call = client.makeBidiStreamRequest(
      AgentServiceService.connect.path,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => ConnectResponse.decode(bytes),
      metadata,
    );
    this.call.on('data', (message: ConnectResponse) => this.receive(message));
    // The status event carries the error too.
    this.call.on('error', () => undefined);
    this.ended = new Promise((resolve) => this.call.on('status', resolve));
    void this.ended.then((s) => {
      if (!this.finished) {
        this.rejectAll(new Error(`${stream.agentId}: the stream ended: ${status[s.code]} ${s.details}`));
      }
    });
    this.call.write(
      encodeRequest({
        hello: {
          agent_id: stream.agentId,
          hostname: 'bench',
          version: '0.0.0-bench',
          capabilities: ['config.delta'],
          config_revision: 0,
          test_revisions: {},
        },
      }),
    );
  }

  /** Starts sending the batches. */
  start(): void {
    this.pump();
  }

  /** Half-closes; resolves with the call's status. */
  close(): Promise<StatusObject> {
    this.call.end();
    return this.ended;
  }

  cancel(): void {
    this.call.cancel();
  }

  private fail(message: string): void {
    this.rejectAll(new Error(`${this.stream.agentId}: ${message}`));
    this.call.cancel();
  }

  private receive(message: ConnectResponse): void {
    if (message.heartbeat) {
      this.call.write(
        encodeRequest({
          heartbeat: {
            sent_time: new Date(),
            free_slots: 100,
            in_flight: 0,
            spool_depth: this.lastSequence - this.acked,
            spool_dropped_total: 0,
          },
        }),
      );
    }
    if (message.config_update) {
      this.lastConfigAt = performance.now();
      // A snapshot is acknowledged once, after its EndOfSnapshot; a delta as it arrives.
      if (!message.config_update.snapshot) this.ackConfig(message.config_update.revision);
    }
    if (message.end_of_snapshot) {
      this.lastConfigAt = performance.now();
      this.ackConfig(message.end_of_snapshot.revision);
      this.resolveSynchronised();
    }
    if (message.result_ack) {
      const upTo = message.result_ack.up_to_sequence;
      if (upTo < this.acked || upTo > this.sent) {
        this.fail(`ResultAck ${upTo}: outside what was acknowledged (${this.acked}) and sent (${this.sent})`);
        return;
      }
      this.acked = upTo;
      if (this.acked === this.lastSequence) {
        this.finished = true;
        this.resolveDone();
      } else {
        this.pump();
      }
    }
  }

  private ackConfig(revision: number): void {
    this.call.write(encodeRequest({ config_ack: { revision, rejected_tests: [] } }));
  }

  private pump(): void {
    const { messages, lastSequences } = this.stream;
    if (!messages.length) {
      this.finished = true;
      this.resolveDone();
      return;
    }
    while (this.next < messages.length && !this.awaitingDrain) {
      const count = lastSequences[this.next]! - this.sent;
      const unacked = this.sent - this.acked;
      // A batch larger than the window still goes, alone.
      if (unacked > 0 && unacked + count > this.window) return;
      const accepted = this.call.write(messages[this.next]!);
      this.sent = lastSequences[this.next]!;
      this.next++;
      if (!accepted) {
        this.awaitingDrain = true;
        this.call.once('drain', () => {
          this.awaitingDrain = false;
          this.pump();
        });
      }
    }
  }
}

interface StreamSetup {
  readonly clients: readonly GrpcClient[];
  /** Location id to the agent token of the location. */
  readonly tokens: ReadonlyMap<string, string>;
  readonly streams: readonly EncodedAgentStream[];
  readonly window: number;
}

/** Configuration messages still arrive (an agent joining moves tests): wait until quiet, boundedly. */
async function configurationSettled(agents: readonly SimulatedAgent[]): Promise<void> {
  const QUIET_MS = 300;
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    const last = Math.max(...agents.map((a) => a.lastConfigAt));
    if (performance.now() - last >= QUIET_MS) return;
    await sleep(50);
  }
}

/**
 * A preload for the control plane: SIGUSR2 starts V8's sampling profiler on its main thread, the next
 * SIGUSR2 stops it and writes `phase-c-<n>.cpuprofile` into `dir` (renamed into place once complete).
 */
function profilerPreload(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(resolve(dir), 'wsmon-profiler-preload.cjs');
  writeFileSync(
    path,
    `const { Session } = require('node:inspector');
const { renameSync, writeFileSync } = require('node:fs');
const session = new Session();
session.connect();
let profiling = false;
let count = 0;
process.on('SIGUSR2', () => {
  if (!profiling) {
    profiling = true;
    session.post('Profiler.enable', () => session.post('Profiler.start'));
    return;
  }
  profiling = false;
  session.post('Profiler.stop', (error, result) => {
    if (error) return;
    const file = ${JSON.stringify(resolve(dir))} + '/phase-c-' + ++count + '.cpuprofile';
    writeFileSync(file + '.part', JSON.stringify(result.profile));
    renameSync(file + '.part', file);
  });
});
`,
  );
  return path;
}

/** Toggles the profiler of {@link profilerPreload}; `stop` waits (boundedly) for the profile file. */
interface PhaseProfiler {
  start(): void;
  stop(): Promise<string>;
}

function phaseProfiler(pid: number, dir: string): PhaseProfiler {
  let count = 0;
  return {
    start: () => process.kill(pid, 'SIGUSR2'),
    async stop() {
      process.kill(pid, 'SIGUSR2');
      const file = join(resolve(dir), `phase-c-${++count}.cpuprofile`);
      for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(50);
      if (!existsSync(file)) throw new Error(`no profile ${file} within 10 s`);
      return file;
    },
  };
}

async function streamPhase(
  setup: StreamSetup,
  rows: number,
  pids: CpuPids,
  profiler: PhaseProfiler | undefined,
): Promise<PhaseResult> {
  const agents = setup.streams.map(
    (stream, i) =>
      new SimulatedAgent(setup.clients[i]!, setup.tokens.get(stream.locationId)!, stream, setup.window),
  );
  try {
    await withTimeout(Promise.all(agents.map((a) => a.synchronised)), 30_000, 'the agents synchronised');
    await configurationSettled(agents);
    profiler?.start();
    const result = await timed(rows, pids, async () => {
      agents.forEach((a) => a.start());
      // At least 1,000 results/s, or something is wrong.
      await withTimeout(Promise.all(agents.map((a) => a.done)), Math.max(60_000, rows), 'the last ResultAck');
    });
    if (profiler) console.log(`  profile: ${await profiler.stop()}`);
    const statuses = await withTimeout(
      Promise.all(agents.map((a) => a.close())),
      10_000,
      'the calls ended after the half-close',
    );
    const failed = statuses.find((s) => s.code !== status.OK);
    if (failed) throw new Error(`a call ended with ${status[failed.code]}: ${failed.details}`);
    return result;
  } finally {
    agents.forEach((a) => a.cancel());
  }
}

// ---------- main ----------

type Phase = 'copy' | 'ingest' | 'stream';
const LABELS: Record<Phase, string> = { copy: 'A copy', ingest: 'B ingest', stream: 'C stream' };

/** SIGTERM, and SIGKILL after a while: the benchmark never waits forever for its child. */
async function stopControlPlane(cp: ControlPlaneProcess): Promise<void> {
  try {
    const code = await withTimeout(cp.stop(), 30_000, 'the control plane stopped');
    if (code !== 0) console.error(`the control plane exited with ${code}:\n${cp.output().slice(-4000)}`);
  } catch (error) {
    console.error(String(error));
    await cp.kill();
  }
}

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2));
  const startMs = performance.now();
  const pg = await startTestPostgres({ fsync: options.fsync });
  try {
    const url = await pg.createDatabase('ingest_bench');
    // Migrates the database as the control plane does; the control plane finds nothing left to do.
    const options_ = dataSourceOptions(url, false);
    const dataSource = new DataSource({
      ...options_,
      extra: { ...(options_.extra as object), max: options.callers + 2 },
    });
    await dataSource.initialize();
    // The control plane's periodic jobs that read what ingest wrote, the roll-up and the alert evaluation,
    // are held off for the whole run: this process holds their advisory locks, as another replica doing
    // them would, and each reset empties the rollup queue. Ingest alone is measured, as the raw COPY is;
    // rolling up is bench:aggregate's (some 30 µs of PostgreSQL per result).
    const jobsHold = new Client({ connectionString: url });
    await jobsHold.connect();
    for (const lock of [ROLLUP_LOCK, EVALUATION_LOCK]) {
      await jobsHold.query('SELECT pg_advisory_lock($1, $2)', [...lock]);
    }
    let cp: ControlPlaneProcess | undefined;
    const clients: GrpcClient[] = [];
    try {
      const slots = Math.ceil(options.rows / (options.tests * options.locations));
      const agentIds = Array.from({ length: options.agents }, (_, i) => `bench-agent-${i + 1}`);
      const plan: RowPlan = {
        testIds: Array.from({ length: options.tests }, () => crypto.randomUUID()),
        locations: Array.from({ length: options.locations }, (_, l) => ({
          id: crypto.randomUUID(),
          agentIds: agentIds.filter((_, i) => i % options.locations === l),
        })),
        slots,
        lastSlotMs: Math.floor(Date.now() / SLOT_MS) * SLOT_MS - SLOT_MS,
      };
      const rows = planSize(plan);
      await createTestsAndLocations(dataSource, plan);
      const repository = new ResultsRepository(
        dataSource,
        dataSource.getRepository(ResultEntity),
        dataSource.getRepository(RunResultEntity),
        dataSource.getRepository(TestEntity),
        dataSource.getRepository(LocationEntity),
      );
      const service = new ResultsService(repository, new LocalChangeBus());
      // Every phase writes into partitions that exist: creating one is not what is measured.
      await repository.ensurePartitions(planDays(plan));

      const adminKey = newAdminKey();
      const cpStart = performance.now();
      cp = await startControlPlane(
        {
          DATABASE_URL: url,
          WSMON_ADMIN_KEY: adminKey,
          WSMON_SECRET_KEY: newSecretKey(),
          ...(options.profileDir
            ? { NODE_OPTIONS: `--require "${profilerPreload(options.profileDir)}"` }
            : {}),
        },
        120_000,
      );
      const pids: CpuPids = { controlPlane: childPid(CONTROL_PLANE_ENTRY), postmaster: postmasterPid() };
      if (pids.controlPlane === undefined || pids.postmaster === undefined) {
        console.warn('the control plane or the postmaster was not found: its CPU is reported as 0');
      }
      const profiler =
        options.profileDir && pids.controlPlane !== undefined
          ? phaseProfiler(pids.controlPlane, options.profileDir)
          : undefined;
      const admin = restClient(cp.httpUrl, adminKey);
      const tokens = new Map<string, string>();
      for (const [i, location] of plan.locations.entries()) {
        const minted = await admin<{ secret: string }>('POST', `/locations/${locationName(i)}/tokens`, {});
        if (minted.status !== 201) {
          throw new Error(
            `minting a token of ${locationName(i)}: ${minted.status} ${JSON.stringify(minted.body)}`,
          );
        }
        tokens.set(location.id, minted.body.secret);
      }
      const cpReadyS = (performance.now() - cpStart) / 1000;

      const generateStart = performance.now();
      const chunks = copyText(plan, COPY_CHUNK_ROWS);
      const streams = encodedAgentStreams(agentResultBatches(plan, options.batch));
      const largest = Math.max(...streams.map((s) => s.maxMessageBytes));
      if (largest >= MAX_MESSAGE_BYTES) {
        throw new Error(`a ResultBatch encodes to ${largest} bytes, over gRPC's 4 MiB limit: lower --batch`);
      }
      const [firstRow] = plannedResults(plan);
      const documentBytes = Buffer.byteLength(JSON.stringify(firstRow!.document));
      // A channel per agent: grpc-js would otherwise share one HTTP/2 connection between clients.
      for (let i = 0; i < streams.length; i++) {
        clients.push(
          new GrpcClient(cp.grpcAddress, credentials.createInsecure(), { 'wsmon.bench.agent': i }),
        );
      }
      const stream: StreamSetup = { clients, tokens, streams, window: options.window };

      console.log(
        `wsmon ingest benchmark${options.quick ? ' (--quick)' : ''}: PostgreSQL ${pg.version} ` +
          `(fsync ${options.fsync ? 'on' : 'off'}), node ${process.version}, ${cpus().length} CPUs, ` +
          `load average ${loadavg()[0]!.toFixed(2)}`,
      );
      console.log(
        `${rows} rows: ${options.tests} tests × ${options.locations} locations × ${slots} slots; ` +
          `result_json ${documentBytes} bytes; batches of ${options.batch} (largest ${(largest / 1024).toFixed(0)} KiB ` +
          `encoded); generated in ${((performance.now() - generateStart) / 1000).toFixed(1)} s\n` +
          `B: ${options.callers} concurrent callers of ResultsService.ingest in this process\n` +
          `C: ${streams.length} agents (${streams.map((s) => s.messages.length).join('/')} batches), ` +
          `each on its own channel, ≤ ${options.window} results unacknowledged each; the control plane's roll-up and alert evaluation held off; control plane ` +
          `pid ${pids.controlPlane ?? '?'} (PostgreSQL ${pids.postmaster ?? '?'}), ready with tokens in ${cpReadyS.toFixed(1)} s` +
          `${options.profileDir ? `, profiled in phase C into ${options.profileDir}` : ''}\n`,
      );

      const results: Record<Phase, PhaseResult[]> = { copy: [], ingest: [], stream: [] };
      const ratios: Record<'ingest' | 'stream', number[]> = { ingest: [], stream: [] };
      const phases: Record<Phase, () => Promise<PhaseResult>> = {
        copy: () => copyPhase(url, chunks, rows, pids),
        // Phase B's results are made anew for each run of it (untimed) and dropped after: kept, their
        // objects would weigh on this process's garbage collector in the other phases (the agents of C).
        ingest: () =>
          ingestPhase(service, agentResultBatches(plan, options.batch), rows, options.callers, pids),
        stream: () => streamPhase(stream, rows, pids, profiler),
      };
      // Warm-up: the ingest paths of this process and of the control plane run once, untimed, so that no
      // round measures code V8 has not optimised yet (a control plane in service has long been warm).
      const warmupStart = performance.now();
      for (const warmup of [phases.ingest, () => streamPhase(stream, rows, pids, undefined)]) {
        await resetResults(dataSource);
        await warmup();
      }
      console.log(
        `warm-up (B and C once, untimed): ${((performance.now() - warmupStart) / 1000).toFixed(1)} s`,
      );
      const budgetEnd = startMs + options.budgetMs;
      for (let round = 0; round < options.rounds && (round === 0 || performance.now() < budgetEnd); round++) {
        const order: readonly Phase[] =
          round % 2 === 0 ? ['copy', 'ingest', 'stream'] : ['stream', 'ingest', 'copy'];
        for (const phase of order) {
          await resetResults(dataSource);
          const result = await phases[phase]().catch((error: unknown) => {
            throw phase === 'stream' && cp
              ? new Error(`${String(error)}\nthe control plane's last output:\n${cp.output().slice(-3000)}`)
              : error;
          });
          const counted = await countResults(dataSource);
          if (counted !== rows) throw new Error(`${phase}: ${counted} rows in results, expected ${rows}`);
          results[phase].push(result);
          console.log(
            `round ${round + 1} ${phase.padEnd(6)} ${result.rate.toFixed(0).padStart(7)} rows/s ` +
              `(${(result.ms / 1000).toFixed(2)} s; CPU µs/row: here ${result.cpuUsPerRow.toFixed(1)}, ` +
              `control plane ${result.controlPlaneUsPerRow.toFixed(1)}, PostgreSQL ${result.postgresUsPerRow.toFixed(1)}, ` +
              `machine ${result.machineUsPerRow.toFixed(1)})`,
          );
        }
        ratios.ingest.push(results.ingest.at(-1)!.rate / results.copy.at(-1)!.rate);
        ratios.stream.push(results.stream.at(-1)!.rate / results.copy.at(-1)!.rate);
      }

      const rate = (phase: Phase) => median(results[phase].map((r) => r.rate));
      const cpu = (phase: Phase, key: keyof PhaseResult) =>
        median(results[phase].map((r) => r[key])).toFixed(1);
      const phaseRow = (phase: Phase, goal: boolean) => [
        LABELS[phase],
        rate(phase).toFixed(0),
        cpu(phase, 'cpuUsPerRow'),
        cpu(phase, 'controlPlaneUsPerRow'),
        cpu(phase, 'postgresUsPerRow'),
        cpu(phase, 'machineUsPerRow'),
        goal ? `≥ ${GOAL_RATE}` : '',
        goal ? goalMark(rate(phase) >= GOAL_RATE) : '',
      ];
      const ratioRow = (phase: 'ingest' | 'stream') => {
        const ratio = median(ratios[phase]);
        return [
          `${phase}/copy`,
          ratio.toFixed(2),
          '',
          '',
          '',
          '',
          `≥ ${GOAL_RATIO}`,
          goalMark(ratio >= GOAL_RATIO),
        ];
      };
      console.log(
        `\n${table([
          [
            'phase',
            'rows/s (median)',
            'µs CPU/row: here',
            'control plane',
            'PostgreSQL',
            'machine',
            'goal',
            '',
          ],
          phaseRow('copy', false),
          phaseRow('ingest', true),
          phaseRow('stream', true),
          ratioRow('ingest'),
          ratioRow('stream'),
        ])}`,
      );
      const c = results.stream;
      const cores = (key: keyof PhaseResult) => median(c.map((r) => (r[key] * r.rate) / 1e6)).toFixed(2);
      // Clock ticks are 10 ms: over a short phase the difference may come out slightly below zero.
      const others = Math.max(
        0,
        median(c.map((r) => r.machineUsPerRow - r.controlPlaneUsPerRow - r.postgresUsPerRow - r.cpuUsPerRow)),
      );
      console.log(
        `\nC, CPU per row (medians): control plane ${cpu('stream', 'controlPlaneUsPerRow')} µs (main thread ` +
          `${cpu('stream', 'controlPlaneMainUsPerRow')}, other threads (V8: GC, compilers) ` +
          `${median(c.map((r) => r.controlPlaneUsPerRow - r.controlPlaneMainUsPerRow)).toFixed(1)}), ` +
          `PostgreSQL ${cpu('stream', 'postgresUsPerRow')}, the agents (this process) ${cpu('stream', 'cpuUsPerRow')}, ` +
          `anything else on the machine ${others.toFixed(1)}.\nCores busy: control plane ` +
          `${cores('controlPlaneUsPerRow')} (main thread ${cores('controlPlaneMainUsPerRow')}), PostgreSQL ` +
          `${cores('postgresUsPerRow')}, agents ${cores('cpuUsPerRow')}; the machine ${cores('machineUsPerRow')} of ` +
          `${cpus().length}.`,
      );
      console.log(
        `(ratios: medians of ${ratios.ingest.length} round(s), each pair within one round; ingest/copy ` +
          `${ratios.ingest.map((r) => r.toFixed(2)).join(', ')}; stream/copy ` +
          `${ratios.stream.map((r) => r.toFixed(2)).join(', ')}; wall time ${((performance.now() - startMs) / 1000).toFixed(1)} s)`,
      );
      return 0;
    } finally {
      clients.forEach((client) => client.close());
      if (cp) await stopControlPlane(cp);
      await jobsHold.end();
      await dataSource.destroy();
    }
  } finally {
    await pg.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = process.exitCode || code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  },
);
