import { randomUUID } from 'node:crypto';
import type { AgentResult } from '@wsmon/proto';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../common/errors';
import { LocalChangeBus } from '../database/change-bus';
import { dataSourceOptions } from '../database/data-source-options';
import {
  BACKENDS,
  openTestDatabase,
  type Backend,
  type TestDatabase,
} from '../database/test-database.spec-helper';
import { LocationEntity } from '../locations/location.entity';
import { agentResult } from '../results/agent-results.spec-helper';
import { ResultEntity } from '../results/result.entity';
import { dayOf, partitionName, ResultsRepository } from '../results/results.repository';
import { ResultsService } from '../results/results.service';
import { RunResultEntity } from '../results/run.entity';
import { TestEntity } from '../tests/test.entity';
import { AggregationRepository } from './aggregation.repository';
import { AggregationService } from './aggregation.service';
import { LATENCY_PRECISION, type LatencyStats } from './latency-histogram';
import { DAY_MS, HOUR_MS, MINUTE_MS } from './summary-plan';
import type { TestSummaryResponse } from './test-summary';

const RETENTION_DAYS = 30;
/** Enough rounds to finish whatever a test queued. */
const UNTIL_DONE = { rounds: 10_000, ms: 120_000 };

/** A deterministic pseudo-random generator (mulberry32): a failure names its seed and replays. */
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

const REASONS = [
  ['ws_open_failed', 'connection_refused', 'CONNRESET'],
  ['ws_handshake_timeout', 'upgrade_timeout', 'TIMEOUT'],
  ['ws_reply_timeout', 'no_reply', 'TIMEOUT'],
  ['ws_closed_early', 'closed_by_server', 'CONNRESET'],
  ['', '', ''],
] as const;
const CLOSE_CODES = [1000, 1000, 1000, 1000, 1001, 1006, 1011, 1012, 1013, 4001, undefined] as const;

interface Generated {
  readonly locationId: string;
  readonly result: AgentResult;
}

/**
 * Results of one test from several locations, `days` back from `end`: slots 10 s apart at least (several
 * in some minutes, none in many), mostly successes, latencies spread per location over three orders of
 * magnitude, a few at 0 and far above any timeout, some missing.
 */
function generateResults(
  random: () => number,
  testId: string,
  locationIds: readonly string[],
  end: number,
  days: number,
  meanGapS: number,
): Generated[] {
  const out: Generated[] = [];
  for (const [l, locationId] of locationIds.entries()) {
    const base = [8, 40, 180, 3][l % 4]!;
    let slot = Math.floor((end - days * DAY_MS) / 10_000) * 10_000;
    for (;;) {
      slot += 10_000 * (1 + Math.floor(random() * random() * (meanGapS / 5)));
      if (slot >= end) break;
      const success = random() < 0.88;
      const [reason, cause, category] = success
        ? ['', '', '']
        : REASONS[Math.floor(random() * REASONS.length)]!;
      const spread = () => base * Math.exp((random() - 0.5) * 3) * (random() < 0.02 ? 1000 : 1);
      const opened = success || reason !== 'ws_open_failed';
      const openMs = !opened ? undefined : random() < 0.01 ? 0 : spread();
      const roundTripMs = opened && random() < 0.8 ? spread() : undefined;
      out.push({
        locationId,
        result: agentResult({
          test_id: testId,
          slot_time: new Date(slot),
          success,
          reason,
          cause,
          category,
          value: roundTripMs,
          open_ms: openMs,
          round_trip_ms: roundTripMs,
          total_ms: (openMs ?? 0) + (roundTripMs ?? 0) + 1,
          close_code: opened ? CLOSE_CODES[Math.floor(random() * CLOSE_CODES.length)] : undefined,
        }),
      });
    }
  }
  return out;
}

/** Batches as agents send them: one location each, at most `size` results. */
function batches(results: readonly Generated[], size: number): Generated[][] {
  const byLocation = new Map<string, Generated[]>();
  for (const r of results) byLocation.set(r.locationId, [...(byLocation.get(r.locationId) ?? []), r]);
  const out: Generated[][] = [];
  for (const list of byLocation.values()) {
    for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  }
  return out;
}

/** Every LatencyStats in a summary, in document order. */
function latencies(value: unknown, out: LatencyStats[] = []): LatencyStats[] {
  if (Array.isArray(value)) value.forEach((v) => latencies(v, out));
  else if (value && typeof value === 'object') {
    if ('p50' in value && 'count' in value) out.push(value as LatencyStats);
    else Object.values(value).forEach((v) => latencies(v, out));
  }
  return out;
}

/** The summary with its percentiles left out: counts and maxima stay. */
const withoutPercentiles = (summary: TestSummaryResponse): unknown =>
  JSON.parse(
    JSON.stringify(summary, (key, value: unknown) =>
      ['p50', 'p90', 'p95', 'p99'].includes(key) ? undefined : value,
    ),
  );

/**
 * The rollups' summary equals the raw results' one: every count and maximum exactly, every percentile
 * within the histogram's precision of the exact (nearest-rank) one.
 */
function expectSameSummary(fromRollups: TestSummaryResponse, fromRaw: TestSummaryResponse, what: string) {
  expect(withoutPercentiles(fromRollups), what).toEqual(withoutPercentiles(fromRaw));
  const approximate = latencies(fromRollups);
  const exact = latencies(fromRaw);
  expect(approximate.length).toBe(exact.length);
  for (const [i, stats] of exact.entries()) {
    for (const p of ['p50', 'p90', 'p95', 'p99'] as const) {
      const want = stats[p];
      const got = approximate[i]![p];
      if (want === null) {
        expect(got, `${what}: ${p} of latencies #${i}`).toBeNull();
        continue;
      }
      // Values at or below 1 µs share the first bucket (read as 0.5 µs).
      const tolerance = Math.max(want * LATENCY_PRECISION * (1 + 1e-9), 0.0005 + 1e-12);
      expect(
        Math.abs(got! - want),
        `${what}: ${p} of latencies #${i}: ${got} for ${want}`,
      ).toBeLessThanOrEqual(tolerance);
    }
  }
}

describe.each(BACKENDS)(`${AggregationService.name} on %s`, (backend: Backend) => {
  let database: TestDatabase | undefined;
  let url: string;
  const open: DataSource[] = [];
  let db: DataSource;
  let results: ResultsService;
  let aggregation: AggregationService;

  async function replica(): Promise<{
    dataSource: DataSource;
    results: ResultsService;
    aggregation: AggregationService;
  }> {
    const dataSource = new DataSource(dataSourceOptions(url, backend === 'embedded'));
    open.push(dataSource);
    await dataSource.initialize();
    const repository = new ResultsRepository(
      dataSource,
      dataSource.getRepository(ResultEntity),
      dataSource.getRepository(RunResultEntity),
      dataSource.getRepository(TestEntity),
      dataSource.getRepository(LocationEntity),
    );
    const config = { resultsRetentionDays: RETENTION_DAYS };
    return {
      dataSource,
      results: new ResultsService(repository, new LocalChangeBus(), config),
      aggregation: new AggregationService(new AggregationRepository(dataSource), config),
    };
  }

  beforeAll(async () => {
    database = await openTestDatabase(backend, 'aggregation');
    url = database.url;
    ({ dataSource: db, results, aggregation } = await replica());
  }, 60_000);

  afterAll(async () => {
    await Promise.all(open.map((dataSource) => dataSource.destroy()));
    await database?.close();
  });

  async function createLocations(n: number): Promise<{ id: string; name: string }[]> {
    const locations = Array.from({ length: n }, () => ({
      id: randomUUID(),
      name: `loc-${randomUUID().slice(0, 8)}`,
    }));
    for (const l of locations) {
      await db.query(`INSERT INTO locations (id, name, kind) VALUES ($1, $2, 'private')`, [l.id, l.name]);
    }
    return locations;
  }

  async function createTest(locations: readonly { id: string; name: string }[]): Promise<string> {
    const id = randomUUID();
    await db.query(
      `INSERT INTO tests (id, name, probe, schedule, retry, alert, location_names, revision)
       VALUES ($1, 'a test', '{"url":"wss://example.test/"}', '{"interval_s":60}', '{}', '{}', $2, 1)`,
      [id, locations.map((l) => l.name)],
    );
    for (const l of locations) {
      await db.query(`INSERT INTO test_locations (test_id, location_id) VALUES ($1, $2)`, [id, l.id]);
    }
    return id;
  }

  async function ingest(service: ResultsService, batch: readonly Generated[]) {
    return service.ingest(
      batch[0]!.locationId,
      'agent-1',
      batch.map((g) => g.result),
    );
  }

  const rollUp = (service = aggregation) => service.rollUp(Date.now(), UNTIL_DONE);

  async function rollupTotals(testId: string, table: string): Promise<{ runs: number; failures: number }> {
    const [row] = await db.query<{ runs: number; failures: number }[]>(
      `SELECT coalesce(sum(runs), 0)::int AS runs, coalesce(sum(failures), 0)::int AS failures
         FROM ${table} WHERE test_id = $1`,
      [testId],
    );
    return row!;
  }

  it('summarises from the rollups what the raw results give, over random ragged windows, with late and replayed results', async () => {
    // A failure names its seed: WSMON_TEST_SEED=<seed> replays it.
    const seed = Number(process.env.WSMON_TEST_SEED ?? Date.now() % 1_000_000);
    const random = randomSource(seed);
    const what = `seed ${seed}`;
    const locations = await createLocations(4);
    const testId = await createTest(locations);
    const now = Date.now();
    const days = backend === 'postgres' ? 29 : 4;
    const generated = generateResults(
      random,
      testId,
      locations.map((l) => l.id),
      now,
      days,
      backend === 'postgres' ? 600 : 900,
    );
    const late = generated.filter(() => random() < 0.15);
    const lateIds = new Set(late.map((g) => g.result.result_id));
    const onTime = generated.filter((g) => !lateIds.has(g.result.result_id));

    const onTimeBatches = batches(onTime, 500);
    for (const [i, batch] of onTimeBatches.entries()) {
      await ingest(results, batch);
      if (i === Math.floor(onTimeBatches.length / 2)) await rollUp();
    }
    await rollUp();
    // Hours, then days late: into hours and days already rolled up.
    const lateBatches = batches(late, 300);
    for (const batch of lateBatches) expect((await ingest(results, batch)).inserted).toBe(batch.length);
    // Replayed: sent again after a reconnect, once before and once after the roll-up.
    for (const batch of [...lateBatches.slice(0, 2), ...onTimeBatches.slice(0, 2)]) {
      expect((await ingest(results, batch)).duplicates).toBe(batch.length);
    }
    expect((await rollUp()).complete).toBe(true);
    for (const batch of onTimeBatches.slice(-2)) {
      expect((await ingest(results, batch)).duplicates).toBe(batch.length);
    }
    await rollUp();
    // A location no longer in the test still shows with its results.
    await db.query('DELETE FROM test_locations WHERE test_id = $1 AND location_id = $2', [
      testId,
      locations[3]!.id,
    ]);

    const total = await rollupTotals(testId, 'rollups_minute');
    expect(total.runs).toBe(generated.length);
    const queries: Record<string, string>[] = ['5m', '1h', '24h', '7d', '30d', '90d'].map((window) => ({
      window,
    }));
    const span = days * DAY_MS;
    for (let i = 0; i < (backend === 'postgres' ? 30 : 10); i++) {
      const length = Math.ceil(Math.exp(random() * Math.log(span / 1000)) * 1000);
      const to = now - Math.floor(random() * (span - length));
      queries.push({
        from: new Date(to - length).toISOString(),
        ...(random() < 0.2 ? {} : { to: new Date(to).toISOString() }),
      });
    }
    const locationNames = locations.map((l) => l.name);
    for (const query of [...queries]) {
      queries.push({ ...query, location: locationNames[Math.floor(random() * locationNames.length)]! });
    }
    const at = Date.now();
    let fromDays = 0;
    for (const query of queries) {
      const { summary, rowsRead } = await aggregation.computeSummary(testId, query, at);
      const reference = await aggregation.summaryFromRaw(testId, query, at);
      expectSameSummary(summary, reference, `${what}, ${JSON.stringify(query)}`);
      fromDays += rowsRead.day;
    }
    const overall = await aggregation.summary(testId, { window: '90d' }, at);
    expect(overall.overall.runs).toBe(generated.length);
    expect(overall.locations.map((l) => l.location_id).sort()).toEqual(locations.map((l) => l.id).sort());
    if (backend === 'postgres') expect(fromDays).toBeGreaterThan(0);
  }, 240_000);

  it('counts a replayed result once, and a late result at once, then rolled into hours and days already rolled up', async () => {
    const [location] = await createLocations(1);
    const testId = await createTest([location!]);
    // Two days ago: its hours and day are over, so rolled up.
    const start = (dayOf(Date.now()) - 2) * DAY_MS + 10 * HOUR_MS;
    const batch = Array.from({ length: 30 }, (_, i) => ({
      locationId: location!.id,
      result: agentResult({
        test_id: testId,
        slot_time: new Date(start + i * MINUTE_MS),
        success: i % 10 !== 0,
      }),
    }));
    await ingest(results, batch);
    await rollUp();
    await ingest(results, batch);
    await rollUp();
    for (const table of ['rollups_minute', 'rollups_hour', 'rollups_day']) {
      expect(await rollupTotals(testId, table), table).toEqual({ runs: 30, failures: 3 });
    }

    // Days late, failing: its minute, hour and day are recomputed.
    const late = agentResult({
      test_id: testId,
      slot_time: new Date(start - 3 * DAY_MS),
      success: false,
      reason: 'ws_open_failed',
    });
    await ingest(results, [{ locationId: location!.id, result: late }]);
    // Before the next round too, the summary counts it: its day is read from raw results meanwhile.
    const before = await aggregation.computeSummary(testId, { window: '7d' });
    expect(before.summary.overall).toMatchObject({ runs: 31, failures: 4 });
    expect(before.rowsRead.raw).toBeGreaterThan(0);
    await rollUp();
    for (const table of ['rollups_minute', 'rollups_hour', 'rollups_day']) {
      expect(await rollupTotals(testId, table), table).toEqual({ runs: 31, failures: 4 });
    }
    const summary = await aggregation.summary(testId, { window: '7d' });
    expect(summary.overall.failure_reasons).toEqual([
      { reason: 'unknown', count: 3 },
      { reason: 'ws_open_failed', count: 1 },
    ]);
  });

  it.runIf(backend === 'postgres')(
    'lets replicas roll up side by side with ingest, one at a time, losing and doubling nothing',
    async () => {
      const locations = await createLocations(2);
      const testId = await createTest(locations);
      const random = randomSource(7);
      // Ending hours ago: every hour is over, so the hour rollups hold all minutes.
      const generated = generateResults(
        random,
        testId,
        locations.map((l) => l.id),
        Date.now() - 3 * HOUR_MS,
        2,
        120,
      );
      const [a, b] = [await replica(), await replica()];
      let ingesting = true;
      const rolling = (async () => {
        let skipped = 0;
        for (let i = 0; ingesting && i < 2000; i++) {
          const outcomes = await Promise.all([rollUp(a.aggregation), rollUp(b.aggregation)]);
          skipped += outcomes.filter((o) => o.skipped).length;
        }
        return skipped;
      })();
      const all = batches(generated, 50);
      for (const [i, batch] of all.entries()) await ingest(i % 2 ? a.results : b.results, batch);
      ingesting = false;
      await rolling;
      expect((await rollUp(a.aggregation)).complete).toBe(true);
      const at = Date.now();
      const summary = await aggregation.summary(testId, { window: '7d' }, at);
      expect(summary.overall.runs).toBe(generated.length);
      expectSameSummary(summary, await aggregation.summaryFromRaw(testId, { window: '7d' }, at), 'replicas');
      expect(await rollupTotals(testId, 'rollups_minute')).toEqual(
        await rollupTotals(testId, 'rollups_hour'),
      );
    },
    120_000,
  );

  it('rolls up at start, and works off a backlog without waiting for the next interval', async () => {
    const [location] = await createLocations(1);
    const testId = await createTest([location!]);
    const start = Math.floor((Date.now() - 2 * HOUR_MS) / HOUR_MS) * HOUR_MS;
    // Six ingests: six queue rows of five results.
    for (let b = 0; b < 6; b++) {
      const batch = Array.from({ length: 5 }, (_, i) => ({
        locationId: location!.id,
        result: agentResult({ test_id: testId, slot_time: new Date(start + (b * 5 + i) * MINUTE_MS) }),
      }));
      expect((await ingest(results, batch)).inserted).toBe(5);
    }
    // One queue row per round, one round per run, one run an hour: only working off the backlog at once
    // rolls them all up in time.
    const paced = new AggregationService(new AggregationRepository(db), {
      resultsRetentionDays: RETENTION_DAYS,
    });
    paced.pace = {
      intervalMs: HOUR_MS,
      budget: { rounds: 1, ms: 60_000 },
      round: { results: 5, buckets: 1_000 },
    };
    paced.onApplicationBootstrap();
    try {
      const deadline = Date.now() + 20_000;
      let totals = await rollupTotals(testId, 'rollups_minute');
      while (totals.runs < 30 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        totals = await rollupTotals(testId, 'rollups_minute');
      }
      expect(totals).toEqual({ runs: 30, failures: 0 });
    } finally {
      await paced.onApplicationShutdown();
    }
    const [queue] = await db.query<{ n: number }[]>('SELECT count(*)::int AS n FROM rollup_queue');
    expect(queue!.n).toBe(0);
  });

  it('drops whole days of results past the retention only, and keeps their rollups', async () => {
    const [location] = await createLocations(1);
    const testId = await createTest([location!]);
    const today = dayOf(Date.now());
    // A result at noon of days from 33 days ago to yesterday, stored directly: ingest discards what is
    // past retention.
    const ages = [33, 32, 31, 30, 29, 2, 1];
    for (const age of ages) {
      const result = agentResult({
        test_id: testId,
        slot_time: new Date((today - age) * DAY_MS + 12 * HOUR_MS),
      });
      await new ResultsRepository(
        db,
        db.getRepository(ResultEntity),
        db.getRepository(RunResultEntity),
        db.getRepository(TestEntity),
        db.getRepository(LocationEntity),
      ).ensurePartitions([today - age]);
      await db.query(
        `INSERT INTO results (test_id, location_id, slot_time, result_id, agent_id, test_revision, attempts,
                              success, total_ms, result)
         VALUES ($1, $2, $3, $4, 'agent-1', 1, 1, true, 1, '{}')`,
        [testId, location!.id, result.slot_time, result.result_id],
      );
    }
    const repository = new AggregationRepository(db);
    await repository.enqueueStored(new Date(0), new Date(Date.now() + DAY_MS));
    await rollUp();
    const before = await rollupTotals(testId, 'rollups_day');

    // Retention at 30 days: a day is dropped once it ended more than 30 days (and an hour) ago.
    const now = today * DAY_MS + 12 * HOUR_MS;
    const { partitions } = await aggregation.applyRetention(now);
    for (const age of [33, 32, 31]) expect(partitions).toContain(partitionName(today - age));
    for (const age of [30, 29, 2, 1, 0]) expect(partitions).not.toContain(partitionName(today - age));
    const [kept] = await db.query<{ count: number }[]>(
      'SELECT count(*)::int AS count FROM results WHERE test_id = $1',
      [testId],
    );
    expect(kept!.count).toBe(4);
    expect(await rollupTotals(testId, 'rollups_day')).toEqual(before);
    expect(before.runs).toBe(ages.length);
    // Results later than the retention are refused at ingest: their day would not come back.
    const outcome = await results.ingest(location!.id, 'agent-1', [
      agentResult({ test_id: testId, slot_time: new Date((today - 31) * DAY_MS + HOUR_MS) }),
    ]);
    expect(outcome.discarded).toBe(1);
  });

  it('names the field of an invalid query, and a test or location that does not exist', async () => {
    const [location] = await createLocations(1);
    const testId = await createTest([location!]);
    const invalid = await aggregation
      .summary(testId, { window: '2d', to: 'yesterday' })
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(InvalidArgumentError);
    expect((invalid as InvalidArgumentError).fieldErrors.map((e) => `${e.path} ${e.rule}`)).toEqual([
      'window enum',
      'to format',
    ]);
    await expect(aggregation.summary(randomUUID(), {})).rejects.toBeInstanceOf(NotFoundError);
    await expect(aggregation.summary('not-a-test', {})).rejects.toBeInstanceOf(NotFoundError);
    await expect(aggregation.summary(testId, { location: 'nowhere' })).rejects.toThrow(
      'location "nowhere" does not exist',
    );
    const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const empty = await aggregation.summary(testId, {
      from: new Date(hour - HOUR_MS).toISOString(),
      to: new Date(hour).toISOString(),
    });
    expect(empty.overall).toMatchObject({
      runs: 0,
      uptime_pct: null,
      abnormal_close_rate: null,
      last_result: null,
    });
    expect(empty.locations).toHaveLength(1);
    expect(empty.step_s).toBe(60);
    expect(empty.overall.series).toHaveLength(60);
    expect(empty.overall.series[0]!.start_time).toBe(new Date(hour - HOUR_MS).toISOString());
  });
});
