/**
 * `npm run bench:aggregate [-- --quick] [-- --days=30 --locations=10 --runs=200 --raw-runs=5 --fsync]`
 *
 * How fast a test's summary comes from the rollups, beside the same summary computed from raw results in
 * the same run. One throwaway PostgreSQL (libs/testing), migrated as the control plane does; one test run
 * every minute from `--locations` locations for the last `--days` days (30 × 10: 432,000 results), loaded
 * with one `COPY results … FROM STDIN` (realistic rows: a 1.6 KiB ProbeResult document each, latencies
 * spread per location, 2 % failures with reasons, some abnormal closes), then queued and rolled up as the
 * control plane does (AggregationService.rollUp: minutes from results, hours from minutes, days from hours).
 *
 * Then, interleaved, `--runs` summaries from the rollups (AggregationService.summary, which reads the
 * coarsest rollups covering the window and raw results at its ragged edges, and each location's last
 * result) and `--raw-runs` of the same summary from raw results alone (AggregationService.summaryFromRaw:
 * exact percentiles by percentile_disc over GROUPING SETS), for the 30-day and the 24-hour window ending
 * now, and the 30-day one of one location. Each summary pair is also checked to agree (counts exactly,
 * percentiles within the histogram's 1 %). Reported: p50 and p99 of each, and raw/rollups ratios of the
 * p50s and p99s, each checked against the goals: 30 days < 50 ms and ≥ 10× faster than raw; 24 hours
 * < 20 ms. Last, the 24-hour summary again while 50,000 results of other tests wait in the rollup queue.
 * A benchmark, not a test: missed goals are printed and the exit code is 0; a disagreement or an
 * error makes it nonzero. PostgreSQL runs without fsync unless `--fsync`.
 */
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { testInputSchema } from '@wsmon/contracts';
import { goalMark, quantile, startTestPostgres, table } from '@wsmon/testing';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DataSource } from 'typeorm';
import { AggregationRepository } from '../src/aggregation/aggregation.repository';
import { AggregationService } from '../src/aggregation/aggregation.service';
import { LATENCY_PRECISION, type LatencyStats } from '../src/aggregation/latency-histogram';
import type { TestSummaryResponse } from '../src/aggregation/test-summary';
import { dataSourceOptions } from '../src/database/data-source-options';
import { LocationEntity } from '../src/locations/location.entity';
import { probeResultDocument } from '../src/results/agent-results.spec-helper';
import { ResultEntity } from '../src/results/result.entity';
import { dayOf, ResultsRepository } from '../src/results/results.repository';
import { RunResultEntity } from '../src/results/run.entity';
import { TestEntity } from '../src/tests/test.entity';

const MINUTE_MS = 60_000;
const GOALS = { thirtyDaysMs: 50, ratio: 10, dayMs: 20 } as const;
const COPY_CHUNK_ROWS = 2000;
const WARM_UP_RUNS = 10;
/** Ten seconds of ingest at 5,000 results/s: what the queue holds between two rounds at such a rate. */
const QUEUED_OTHER_RESULTS = 50_000;
const ROLLUP_BUDGET = { rounds: 100_000, ms: 900_000 };

interface Options {
  readonly quick: boolean;
  readonly days: number;
  readonly locations: number;
  readonly runs: number;
  readonly rawRuns: number;
  readonly fsync: boolean;
}

const USAGE = `usage: npm run bench:aggregate -- [--quick] [--days=N] [--locations=N] [--runs=N] [--raw-runs=N] [--fsync]
Every option may also come from the environment: WSMON_BENCH_DAYS=30, WSMON_BENCH_FSYNC=1, ...`;

function readOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      fsync: { type: 'boolean' },
      help: { type: 'boolean' },
      days: { type: 'string' },
      locations: { type: 'string' },
      runs: { type: 'string' },
      'raw-runs': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const env = (name: string) => process.env[`WSMON_BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const flag = (name: 'quick' | 'fsync') => values[name] ?? ['1', 'true', 'yes'].includes(env(name) ?? '');
  const quick = flag('quick');
  // Upper bounds keep the run finite in rows, memory and time whatever is passed.
  const int = (
    name: 'days' | 'locations' | 'runs' | 'raw-runs',
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
  return {
    quick,
    fsync: flag('fsync'),
    days: int('days', 30, 2, 30),
    locations: int('locations', 10, 1, 50),
    runs: int('runs', quick ? 20 : 200, 1, 2000),
    rawRuns: int('raw-runs', quick ? 2 : 5, 1, 100),
  };
}

// ---------- the data ----------

const COPY_COLUMNS =
  'test_id, location_id, slot_time, result_id, agent_id, test_revision, started_at, attempts, success, ' +
  'value, reason, cause, category, open_ms, round_trip_ms, total_ms, close_code, tls_not_after, result';

const FAILURES = [
  ['ws_open_failed', 'connection_refused', 'CONNRESET'],
  ['ws_handshake_timeout', 'upgrade_timeout', 'TIMEOUT'],
  ['ws_reply_timeout', 'no_reply', 'TIMEOUT'],
  ['ws_closed_early', 'closed_by_server', 'CONNRESET'],
] as const;

/** A deterministic generator (mulberry32): every run loads the same latencies. */
function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The rows in COPY text format, in chunks: every location's result of every minute slot from `firstSlot`,
 * the handshake around 20 to 150 ms by location (log-normal-ish, a slow tail), the round trip around half
 * that; 2 % failures, 1 % abnormal closes.
 */
function* copyChunks(
  testId: string,
  locationIds: readonly string[],
  firstSlot: number,
  slots: number,
): Generator<Buffer> {
  const random = randomSource(20_261_121);
  const template = probeResultDocument();
  let lines: string[] = [];
  for (let s = 0; s < slots; s++) {
    const slotMs = firstSlot + s * MINUTE_MS;
    const slot = new Date(slotMs).toISOString();
    for (const [l, locationId] of locationIds.entries()) {
      const base = 20 + (130 * l) / Math.max(1, locationIds.length - 1);
      const tail = random() < 0.01 ? 5 : 1;
      const openMs = base * Math.exp((random() - 0.5) * 0.8) * tail;
      const failure = random() < 0.02 ? FAILURES[Math.floor(random() * FAILURES.length)]! : undefined;
      const opened = failure?.[0] !== 'ws_open_failed';
      const roundTripMs =
        opened && !failure ? (base / 2) * Math.exp((random() - 0.5) * 0.8) * tail : undefined;
      const closeCode = !opened
        ? undefined
        : random() < 0.01
          ? [1006, 1011, 1012, 1013][Math.floor(random() * 4)]!
          : 1000;
      const totalMs = (opened ? openMs : 0) + (roundTripMs ?? 0) + 2;
      const document = {
        ...template,
        success: !failure,
        value: roundTripMs ?? null,
        started_at: slot,
        failure: failure
          ? { reason: failure[0], cause: failure[1], category: failure[2], message: '' }
          : null,
        timings: {
          ...template.timings,
          open_ms: opened ? openMs : null,
          round_trip_ms: roundTripMs ?? null,
          total_ms: totalMs,
        },
        close: closeCode === undefined ? null : { ...template.close!, code: closeCode },
      };
      lines.push(
        [
          testId,
          locationId,
          slot,
          randomUUID(),
          `agent-${l + 1}`,
          1,
          slot,
          1,
          failure ? 'f' : 't',
          roundTripMs,
          failure?.[0],
          failure?.[1],
          failure?.[2],
          opened ? openMs : undefined,
          roundTripMs,
          totalMs,
          closeCode,
          template.tls?.certificate?.valid_to,
          JSON.stringify(document).replaceAll('\\', '\\\\'),
        ]
          .map((v) => (v === undefined || v === null ? '\\N' : String(v)))
          .join('\t'),
      );
      if (lines.length >= COPY_CHUNK_ROWS) {
        yield Buffer.from(`${lines.join('\n')}\n`);
        lines = [];
      }
    }
  }
  if (lines.length) yield Buffer.from(`${lines.join('\n')}\n`);
}

// ---------- measuring ----------

interface Timing {
  readonly p50: number;
  readonly p99: number;
  readonly runs: number;
}

const timing = (ms: readonly number[]): Timing => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), runs: sorted.length };
};

/** Every LatencyStats in a summary, in document order. */
function latencies(value: unknown, out: LatencyStats[] = []): LatencyStats[] {
  if (Array.isArray(value)) value.forEach((v) => latencies(v, out));
  else if (value && typeof value === 'object') {
    if ('p50' in value && 'count' in value) out.push(value as LatencyStats);
    else Object.values(value).forEach((v) => latencies(v, out));
  }
  return out;
}

/** Where the rollups' summary disagrees with the raw one (counts exactly, percentiles within 1 %). */
function disagreement(rollups: TestSummaryResponse, raw: TestSummaryResponse): string | undefined {
  const strip = (s: TestSummaryResponse) =>
    JSON.stringify(s, (key, value: unknown) =>
      ['p50', 'p90', 'p95', 'p99'].includes(key) ? undefined : value,
    );
  if (strip(rollups) !== strip(raw)) return 'counts, maxima or last results differ';
  const exact = latencies(raw);
  const approximate = latencies(rollups);
  for (const [i, stats] of exact.entries()) {
    for (const p of ['p50', 'p90', 'p95', 'p99'] as const) {
      const want = stats[p];
      const got = approximate[i]![p];
      if (
        want === null ? got !== null : Math.abs(got! - want) > want * LATENCY_PRECISION * (1 + 1e-9) + 1e-12
      ) {
        return `${p} of latencies #${i}: ${got} for ${want}`;
      }
    }
  }
  return undefined;
}

const ms = (value: number) => value.toFixed(value < 10 ? 2 : 1);

// ---------- main ----------

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2));
  const startMs = performance.now();
  const pg = await startTestPostgres({ fsync: options.fsync });
  try {
    const url = await pg.createDatabase('aggregate_bench');
    const dataSource = new DataSource(dataSourceOptions(url, false));
    await dataSource.initialize();
    try {
      const testId = randomUUID();
      const locationIds = Array.from({ length: options.locations }, () => randomUUID());
      const locationNames = locationIds.map((_, i) => `bench-${i + 1}`);
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
         VALUES ($1, 'bench', $2, $3, $4, $5, $6::text[], 1)`,
        [
          testId,
          JSON.stringify(input.probe),
          JSON.stringify(input.schedule),
          JSON.stringify(input.retry),
          JSON.stringify(input.alert),
          locationNames,
        ],
      );
      await dataSource.query(
        `INSERT INTO test_locations (test_id, location_id) SELECT $1, id FROM unnest($2::uuid[]) AS l(id)`,
        [testId, locationIds],
      );

      // The slots of the last `days` days, ending with the last whole minute.
      const slots = options.days * 1440;
      const lastSlot = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - MINUTE_MS;
      const firstSlot = lastSlot - (slots - 1) * MINUTE_MS;
      const rows = slots * options.locations;
      const results = new ResultsRepository(
        dataSource,
        dataSource.getRepository(ResultEntity),
        dataSource.getRepository(RunResultEntity),
        dataSource.getRepository(TestEntity),
        dataSource.getRepository(LocationEntity),
      );
      await results.ensurePartitions(
        Array.from({ length: dayOf(lastSlot) - dayOf(firstSlot) + 1 }, (_, i) => dayOf(firstSlot) + i),
      );

      console.log(
        `wsmon aggregate benchmark${options.quick ? ' (--quick)' : ''}: PostgreSQL ${pg.version} ` +
          `(fsync ${options.fsync ? 'on' : 'off'}), node ${process.version}, ${cpus().length} CPUs, ` +
          `load average ${loadavg()[0]!.toFixed(2)}`,
      );
      let loadStart = performance.now();
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        await pipeline(
          Readable.from(copyChunks(testId, locationIds, firstSlot, slots)),
          client.query(copyFrom(`COPY results (${COPY_COLUMNS}) FROM STDIN`)),
        );
      } finally {
        await client.end();
      }
      const copyS = (performance.now() - loadStart) / 1000;
      await dataSource.query('VACUUM (ANALYZE) results');

      const repository = new AggregationRepository(dataSource);
      const aggregation = new AggregationService(repository, { resultsRetentionDays: 30 });
      loadStart = performance.now();
      const queued = await repository.enqueueStored(new Date(firstSlot), new Date(lastSlot + MINUTE_MS));
      const rolled = await aggregation.rollUp(Date.now(), ROLLUP_BUDGET);
      const rollupS = (performance.now() - loadStart) / 1000;
      if (queued !== rows || rolled.results !== rows || !rolled.complete) {
        throw new Error(`rolled up ${rolled.results} of ${rows} results (queued ${queued})`);
      }
      await dataSource.query('VACUUM (ANALYZE) rollups_minute, rollups_hour, rollups_day');
      const [sizes] = await dataSource.query<
        { results: string; minute: string; hour: string; day: string }[]
      >(
        `SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) AS results,
                pg_size_pretty(pg_total_relation_size('rollups_minute')) AS minute,
                pg_size_pretty(pg_total_relation_size('rollups_hour')) AS hour,
                pg_size_pretty(pg_total_relation_size('rollups_day')) AS day
           FROM pg_inherits WHERE inhparent = 'results'::regclass`,
      );
      console.log(
        `${rows} results: 1 test × ${options.locations} locations × ${slots} one-minute slots (${options.days} days); ` +
          `COPY ${copyS.toFixed(1)} s (${(rows / copyS).toFixed(0)} rows/s), rolled up in ${rollupS.toFixed(1)} s ` +
          `(${(rows / rollupS).toFixed(0)} results/s, ${rolled.rounds} rounds: ${rolled.minutes} minute, ` +
          `${rolled.hours} hour, ${rolled.days} day rows)\n` +
          `sizes: results ${sizes!.results}; rollups by minute ${sizes!.minute}, hour ${sizes!.hour}, day ${sizes!.day}\n`,
      );

      const cases = [
        { name: '30 days', query: { window: '30d' }, goalMs: GOALS.thirtyDaysMs, ratioGoal: GOALS.ratio },
        { name: '24 hours', query: { window: '24h' }, goalMs: GOALS.dayMs, ratioGoal: undefined },
        {
          name: '30 days, 1 location',
          query: { window: '30d', location: locationNames[0]! },
          goalMs: undefined,
          ratioGoal: undefined,
        },
      ] as const;
      const measured = cases.map(() => ({ rollups: [] as number[], raw: [] as number[], read: '' }));
      // Warm up both paths (plans, caches, V8's optimised code), then interleave: a drift during the run
      // favours neither.
      for (const c of cases) {
        for (let i = 0; i < WARM_UP_RUNS; i++) await aggregation.summary(testId, c.query);
        await aggregation.summaryFromRaw(testId, c.query);
      }
      for (let run = 0; run < options.runs; run++) {
        for (const [i, c] of cases.entries()) {
          const now = Date.now();
          let start = performance.now();
          const { summary, rowsRead } = await aggregation.computeSummary(testId, c.query, now);
          measured[i]!.rollups.push(performance.now() - start);
          measured[i]!.read = `${rowsRead.day}/${rowsRead.hour}/${rowsRead.minute}/${rowsRead.raw}`;
          // The raw summaries are slow: spread `--raw-runs` of them over the runs.
          if (
            Math.floor(((run + 1) * options.rawRuns) / options.runs) >
            Math.floor((run * options.rawRuns) / options.runs)
          ) {
            start = performance.now();
            const raw = await aggregation.summaryFromRaw(testId, c.query, now);
            measured[i]!.raw.push(performance.now() - start);
            const differs = disagreement(summary, raw);
            if (differs)
              throw new Error(`${c.name}: the rollups' summary differs from the raw one: ${differs}`);
            if (summary.overall.runs === 0) throw new Error(`${c.name}: no runs summarised`);
          }
        }
      }

      const lines: string[][] = [
        ['summary', 'source', 'rows read (day/hour/minute/raw)', 'p50 ms', 'p99 ms', 'runs', 'goal', ''],
      ];
      let allAgree = true;
      for (const [i, c] of cases.entries()) {
        const rollups = timing(measured[i]!.rollups);
        const raw = timing(measured[i]!.raw);
        allAgree &&= measured[i]!.raw.length > 0;
        lines.push([
          c.name,
          'rollups',
          measured[i]!.read,
          ms(rollups.p50),
          ms(rollups.p99),
          String(rollups.runs),
          c.goalMs === undefined ? '' : `< ${c.goalMs} ms`,
          c.goalMs === undefined
            ? ''
            : `p50 ${goalMark(rollups.p50 < c.goalMs)}, p99 ${goalMark(rollups.p99 < c.goalMs)}`,
        ]);
        lines.push([c.name, 'raw', 'all', ms(raw.p50), ms(raw.p99), String(raw.runs), '', '']);
        const ratio50 = raw.p50 / rollups.p50;
        lines.push([
          c.name,
          'raw / rollups',
          '',
          `${ratio50.toFixed(0)}×`,
          `${(raw.p99 / rollups.p99).toFixed(0)}×`,
          '',
          c.ratioGoal === undefined ? '' : `≥ ${c.ratioGoal}×`,
          c.ratioGoal === undefined
            ? ''
            : `p50 ${goalMark(ratio50 >= c.ratioGoal)}, p99 ${goalMark(raw.p99 / rollups.p99 >= c.ratioGoal)}`,
        ]);
      }
      console.log(table(lines, Infinity));

      // Between rounds the queue holds what ingest stored since the last one; a summary looks in it for
      // the test's own results. Other tests' results fill it here (no round runs meanwhile).
      const othersQueued = options.quick ? 10_000 : QUEUED_OTHER_RESULTS;
      await dataSource.query(
        `INSERT INTO rollup_queue (location_id, test_ids, slot_times, result_count)
         SELECT gen_random_uuid(), array_agg(gen_random_uuid()), array_agg(now() - interval '1 minute'), count(*)
           FROM generate_series(0, $1 - 1) AS i GROUP BY i / 500`,
        [othersQueued],
      );
      const withQueue: number[] = [];
      for (let run = 0; run < options.runs; run++) {
        const start = performance.now();
        await aggregation.summary(testId, { window: '24h' });
        withQueue.push(performance.now() - start);
      }
      await dataSource.query('TRUNCATE rollup_queue');
      const queuedTiming = timing(withQueue);
      console.log(
        `24 hours, ${othersQueued} results of other tests queued: p50 ${ms(queuedTiming.p50)} ms, ` +
          `p99 ${ms(queuedTiming.p99)} ms over ${queuedTiming.runs} runs`,
      );
      console.log(
        `\nEvery raw summary agreed with the rollups' one (counts and maxima exactly, percentiles within ` +
          `${LATENCY_PRECISION * 100} %)${allAgree ? '' : ' where compared'}. Wall time ` +
          `${((performance.now() - startMs) / 1000).toFixed(1)} s.`,
      );
      return 0;
    } finally {
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
