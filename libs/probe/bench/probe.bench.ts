/**
 * `npm run bench:probe [-- --quick] [-- --rounds=6 --max-probes=2000 --round-ms=1500 ...]`
 *
 * Probes per second of the engine (`createProbe(config).run()`) against the least a raw `ws` client
 * does for the same measurement, and the handshake time the engine reports against the one the raw
 * client measures, all against one local echo server. A benchmark, not a test: missed goals are
 * printed, the exit code is 0; a failed probe or any error makes it nonzero.
 *
 * Where the echo server runs: by default in its own process (`--server=child`); `--server=inproc` is kept
 * to compare. Both were measured (2 cores, Node 20): in-process, sequential rates were higher (≈2600 vs
 * ≈1900 handshakes/s: on loopback, waking another process costs more than handing over within one loop)
 * and rates at concurrency 50 lower (≈2400 vs ≈2800/s: one core for both); the ratios came out alike
 * (≈0.85–0.90). The child is the fairer set-up all the same: in-process, the server's own work per probe
 * (upgrade parsing, echo, close) is added to both sides' cost, which pulls engine/raw towards 1 and
 * flatters the engine, and the client CPU figures would include the server. In a child process the
 * client's loop carries only client work, as in an agent probing a remote endpoint. Its price is noise at
 * concurrency 50 (single pairs from 0.5 to 1.0 when the server process is descheduled): the median of
 * pairs absorbs it, and the client CPU µs per probe is the steadiest figure.
 *
 * Noise: machines here are shared and small. Both implementations are warmed up first, then every
 * scenario runs interleaved rounds in ABBA order (raw, engine, engine, raw, ...), so drift and the
 * after-effects of one round (GC, sockets closing) fall on both; rates are medians of rounds and the
 * ratio is the median of the per-pair ratios (each pair ran back to back).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { assertProbeConfig, type ProbeConfigInput } from '@wsmon/contracts';
import { goalMark, median, quantile, table } from '@wsmon/testing';
import { createProbe } from '../src/index';
import type { EchoChildReady } from './echo-child';
import { startEchoServer } from './echo-server';
import { engineRun, rawHandshake, rawRoundTrip, runRound, type ProbeFn, type RoundResult } from './loops';

const GOAL_RATIO = 0.8;
const GOAL_OVERHEAD_MS = 0.1;
const MESSAGE = 'ping';
const PROBE_TIMEOUT_MS = 5000;
const SERVER_START_TIMEOUT_MS = 10_000;
/** Between rounds: lets the last round's sockets finish closing before the next one is timed. */
const SETTLE_MS = 25;

// ---------- options ----------

interface Options {
  readonly quick: boolean;
  /** Rounds per implementation per scenario (raw and engine each run this many). */
  readonly rounds: number;
  readonly maxProbes: number;
  readonly roundMs: number;
  readonly concurrency: number;
  readonly warmupProbes: number;
  readonly warmupMs: number;
  /** Soft cap of the whole run: later scenarios get fewer rounds (never fewer than one pair). */
  readonly budgetMs: number;
  readonly server: 'child' | 'inproc';
}

const USAGE = `usage: npm run bench:probe -- [--quick] [--rounds=N] [--max-probes=N] [--round-ms=MS]
                               [--concurrency=N] [--warmup-probes=N] [--warmup-ms=MS] [--budget-s=S]
                               [--server=child|inproc]
Every option may also come from the environment: WSMON_BENCH_QUICK=1, WSMON_BENCH_ROUNDS=6, ...`;

function readOptions(argv: string[]): Options {
  const spec = {
    quick: { type: 'boolean' },
    rounds: { type: 'string' },
    'max-probes': { type: 'string' },
    'round-ms': { type: 'string' },
    concurrency: { type: 'string' },
    'warmup-probes': { type: 'string' },
    'warmup-ms': { type: 'string' },
    'budget-s': { type: 'string' },
    server: { type: 'string' },
    help: { type: 'boolean' },
  } as const;
  const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const env = (name: string) => process.env[`WSMON_BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const text = (name: Exclude<keyof typeof spec, 'quick' | 'help'>) => values[name] ?? env(name);
  const quick = values.quick ?? ['1', 'true', 'yes'].includes(env('quick') ?? '');
  const int = (
    name: Exclude<keyof typeof spec, 'quick' | 'help' | 'server'>,
    fallback: number,
    min: number,
    max: number,
  ) => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max)
      throw new Error(`--${name} must be an integer from ${min} to ${max}\n${USAGE}`);
    return value;
  };
  const server = text('server') ?? 'child';
  if (server !== 'child' && server !== 'inproc')
    throw new Error(`--server must be child or inproc\n${USAGE}`);
  return {
    quick,
    server,
    // Upper bounds keep every loop finite in count and in time whatever is passed.
    rounds: int('rounds', quick ? 3 : 6, 1, 100),
    maxProbes: int('max-probes', quick ? 300 : 2000, 1, 100_000),
    roundMs: int('round-ms', quick ? 300 : 1200, 50, 30_000),
    concurrency: int('concurrency', 50, 1, 1000),
    warmupProbes: int('warmup-probes', quick ? 100 : 500, 0, 100_000),
    warmupMs: int('warmup-ms', quick ? 300 : 800, 0, 30_000),
    budgetMs: int('budget-s', quick ? 15 : 55, 1, 600) * 1000,
  };
}

// ---------- the echo server ----------

interface RunningServer {
  readonly port: number;
  readonly where: string;
  stop(): Promise<void>;
}

async function startServer(mode: Options['server']): Promise<RunningServer> {
  if (mode === 'inproc') {
    const server = await startEchoServer();
    return { port: server.port, where: 'in this process', stop: () => server.close() };
  }
  // Bundled by scripts/bench.mjs the child sits beside this file as .mjs; run through tsx it is .ts
  // (fork() passes on process.execArgv, which then carries tsx's loader).
  const childFile = import.meta.url.endsWith('.ts') ? './echo-child.ts' : './echo-child.mjs';
  const child = fork(fileURLToPath(new URL(childFile, import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the echo server did not start in time')),
      SERVER_START_TIMEOUT_MS,
    );
    child.once('message', (message: EchoChildReady) => {
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the echo server exited with ${code ?? 'a signal'} before it was ready`));
    });
  }).catch((error: unknown) => {
    child.kill();
    throw error;
  });
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`echo server process exited unexpectedly (${code ?? signal ?? '?'})`);
      process.exitCode = 1;
    }
  });
  return {
    port,
    where: `in a child process (pid ${child.pid ?? '?'})`,
    stop: () => stopChild(child, () => (stopping = true)),
  };
}

async function stopChild(child: ChildProcess, markStopping: () => void): Promise<void> {
  markStopping();
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.send('stop');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

// ---------- scenarios ----------

type Impl = 'raw' | 'engine';

interface Scenario {
  readonly label: string;
  readonly kind: 'handshake' | 'round_trip';
  readonly concurrency: number;
  readonly probes: Record<Impl, ProbeFn>;
}

interface ScenarioResult {
  readonly scenario: Scenario;
  readonly rates: Record<Impl, number[]>;
  readonly cpuUs: Record<Impl, number[]>;
  /** engine/raw of each pair of rounds run back to back. */
  readonly ratios: number[];
  readonly openMs: Record<Impl, number[]>;
  readonly roundTripMs: Record<Impl, number[]>;
}

interface Totals {
  probes: Record<Impl, number>;
  failures: Record<Impl, number>;
  errors: string[];
}

function record(totals: Totals, impl: Impl, round: RoundResult): void {
  totals.probes[impl] += round.completed + round.failed;
  totals.failures[impl] += round.failed;
  for (const error of round.errors)
    if (totals.errors.length < 10 && !totals.errors.includes(error)) totals.errors.push(error);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runScenario(
  scenario: Scenario,
  options: Options,
  deadlineMs: number,
  totals: Totals,
): Promise<ScenarioResult> {
  const result: ScenarioResult = {
    scenario,
    rates: { raw: [], engine: [] },
    cpuUs: { raw: [], engine: [] },
    ratios: [],
    openMs: { raw: [], engine: [] },
    roundTripMs: { raw: [], engine: [] },
  };
  const limits = { maxProbes: options.maxProbes, maxMs: options.roundMs, concurrency: scenario.concurrency };
  for (let pair = 0; pair < options.rounds && (pair === 0 || performance.now() < deadlineMs); pair++) {
    const order: Impl[] = pair % 2 === 0 ? ['raw', 'engine'] : ['engine', 'raw'];
    const rate: Partial<Record<Impl, number>> = {};
    for (const impl of order) {
      const round = await runRound(scenario.probes[impl], limits);
      record(totals, impl, round);
      if (round.completed === 0) throw new Error(`${scenario.label}: a ${impl} round completed no probe`);
      rate[impl] = round.rate;
      result.rates[impl].push(round.rate);
      result.cpuUs[impl].push(round.cpuUsPerProbe);
      result.openMs[impl].push(...round.openMs);
      result.roundTripMs[impl].push(...round.roundTripMs);
      await sleep(SETTLE_MS);
    }
    result.ratios.push(rate.engine! / rate.raw!);
  }
  return result;
}

// ---------- statistics and the table ----------

const fmtRate = (n: number) => n.toFixed(0);
const fmtMs = (n: number) => `${n.toFixed(3)} ms`;

interface Goal {
  readonly name: string;
  readonly met: boolean;
}

function report(results: readonly ScenarioResult[], totals: Totals): Goal[] {
  const goals: Goal[] = [];
  const rows: string[][] = [
    [
      'scenario',
      'raw/s',
      'engine/s',
      'engine/raw',
      'pair ratios min–max',
      'pairs',
      `goal ≥ ${GOAL_RATIO}`,
      'client CPU µs/probe raw',
      'engine',
    ],
  ];
  for (const r of results) {
    const ratio = median(r.ratios);
    const met = ratio >= GOAL_RATIO;
    goals.push({ name: `${r.scenario.label} ratio ${ratio.toFixed(2)}`, met });
    rows.push([
      r.scenario.label,
      fmtRate(median(r.rates.raw)),
      fmtRate(median(r.rates.engine)),
      ratio.toFixed(2),
      `${Math.min(...r.ratios).toFixed(2)}–${Math.max(...r.ratios).toFixed(2)}`,
      String(r.ratios.length),
      goalMark(met),
      median(r.cpuUs.raw).toFixed(0),
      median(r.cpuUs.engine).toFixed(0),
    ]);
  }
  console.log(table(rows));
  console.log(
    '(rates and CPU: median of rounds; engine/raw: median of the ratios of rounds run back to back; CPU is\n' +
      " this process's user + system time per probe, which includes the echo server with --server=inproc)\n",
  );

  const latency: string[][] = [
    [
      'time (all probes of the scenario)',
      'raw median',
      'raw p99',
      'engine median',
      'engine p99',
      'engine − raw (median)',
    ],
  ];
  for (const r of results) {
    const what = r.scenario.kind === 'handshake' ? r.openMs : r.roundTripMs;
    const name = r.scenario.kind === 'handshake' ? 'handshake' : 'round trip (send → echo)';
    latency.push([
      `${name}, ${r.scenario.concurrency === 1 ? 'sequential' : `concurrency ${r.scenario.concurrency}`}`,
      fmtMs(median(what.raw)),
      fmtMs(quantile(what.raw, 0.99)),
      fmtMs(median(what.engine)),
      fmtMs(quantile(what.engine, 0.99)),
      fmtMs(median(what.engine) - median(what.raw)),
    ]);
  }
  console.log(table(latency));
  console.log(
    'handshake: raw = performance.now() from new WebSocket() to "open"; engine = its timings.open_ms\n' +
      'round trip: raw = send() to the echo; engine = its timings.round_trip_ms\n',
  );

  const sequential = results.find((r) => r.scenario.kind === 'handshake' && r.scenario.concurrency === 1);
  if (sequential) {
    const overhead = median(sequential.openMs.engine) - median(sequential.openMs.raw);
    const met = overhead < GOAL_OVERHEAD_MS;
    goals.push({ name: `measurement overhead ${overhead.toFixed(3)} ms`, met });
    console.log(
      `measurement overhead (sequential handshakes, engine median timings.open_ms − raw median): ` +
        `${overhead.toFixed(3)} ms   goal < ${GOAL_OVERHEAD_MS} ms   ${goalMark(met)}`,
    );
  }
  console.log(
    `probes run: raw ${totals.probes.raw}, engine ${totals.probes.engine}; ` +
      `failures: raw ${totals.failures.raw}, engine ${totals.failures.engine}`,
  );
  for (const error of totals.errors) console.log(`  failure: ${error}`);
  return goals;
}

// ---------- main ----------

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2));
  const startMs = performance.now();
  const server = await startServer(options.server);
  try {
    const url = `ws://127.0.0.1:${server.port}/`;
    const handshakeConfig: ProbeConfigInput = {
      url,
      interpretation: 'handshake_latency',
      timeout_ms: PROBE_TIMEOUT_MS,
    };
    const roundTripConfig: ProbeConfigInput = {
      url,
      interpretation: 'round_trip_latency',
      ping_mode: 'message',
      send_message: MESSAGE,
      expect_message: MESSAGE,
      timeout_ms: PROBE_TIMEOUT_MS,
    };
    // Compiled once, as the agent does; each run() is one probe.
    const handshakeProbes: Record<Impl, ProbeFn> = {
      raw: rawHandshake(url, PROBE_TIMEOUT_MS),
      engine: engineRun(createProbe(assertProbeConfig(handshakeConfig)), false),
    };
    const roundTripProbes: Record<Impl, ProbeFn> = {
      raw: rawRoundTrip(url, MESSAGE, PROBE_TIMEOUT_MS),
      engine: engineRun(createProbe(assertProbeConfig(roundTripConfig)), true),
    };
    const c = options.concurrency;
    const scenarios: Scenario[] = [
      { label: 'handshake, sequential', kind: 'handshake', concurrency: 1, probes: handshakeProbes },
      { label: `handshake, concurrency ${c}`, kind: 'handshake', concurrency: c, probes: handshakeProbes },
      { label: 'round trip, sequential', kind: 'round_trip', concurrency: 1, probes: roundTripProbes },
      { label: `round trip, concurrency ${c}`, kind: 'round_trip', concurrency: c, probes: roundTripProbes },
    ];

    console.log(
      `wsmon probe benchmark${options.quick ? ' (--quick)' : ''}: echo server ${url} ${server.where}`,
    );
    console.log(
      `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(2)}; ` +
        `${options.rounds} rounds per implementation per scenario, each ≤ ${options.maxProbes} probes or ` +
        `${options.roundMs} ms, interleaved raw/engine in ABBA order\n`,
    );

    const totals: Totals = { probes: { raw: 0, engine: 0 }, failures: { raw: 0, engine: 0 }, errors: [] };
    // Warm-up: the JIT, the sockets and the server see both implementations, both kinds, both loads.
    const warmup = { maxProbes: options.warmupProbes, maxMs: options.warmupMs };
    if (warmup.maxProbes > 0 && warmup.maxMs > 0) {
      for (const concurrency of [c, 1]) {
        for (const probes of [handshakeProbes, roundTripProbes]) {
          for (const impl of ['raw', 'engine'] as const) {
            record(totals, impl, await runRound(probes[impl], { ...warmup, concurrency }));
          }
        }
      }
    }
    const measureStartMs = performance.now();
    const budgetEndMs = startMs + options.budgetMs;
    const results: ScenarioResult[] = [];
    for (const [i, scenario] of scenarios.entries()) {
      // Each scenario gets an equal share of what is left of the budget.
      const share = Math.max(0, budgetEndMs - performance.now()) / (scenarios.length - i);
      results.push(await runScenario(scenario, options, performance.now() + share, totals));
    }
    const goals = report(results, totals);
    const met = goals.filter((g) => g.met);
    const missed = goals.filter((g) => !g.met);
    console.log(
      `\nwall time ${((performance.now() - startMs) / 1000).toFixed(1)} s ` +
        `(measuring ${((performance.now() - measureStartMs) / 1000).toFixed(1)} s); load average now ${loadavg()[0]!.toFixed(2)}`,
    );
    console.log(
      `goals met: ${met.length}/${goals.length}` +
        (missed.length === 0 ? ' (all)' : `; missed: ${missed.map((g) => g.name).join(', ')}`),
    );
    const failures = totals.failures.raw + totals.failures.engine;
    if (failures > 0) {
      console.error(`\n${failures} probe(s) failed: the figures above are not trustworthy.`);
      return 1;
    }
    return 0;
  } finally {
    await server.stop();
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
