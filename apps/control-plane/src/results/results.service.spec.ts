import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../common/errors';
import { LocalChangeBus, type ChangeChannel } from '../database/change-bus';
import { dataSourceOptions } from '../database/data-source-options';
import {
  BACKENDS,
  openTestDatabase,
  type Backend,
  type TestDatabase,
} from '../database/test-database.spec-helper';
import { LocationEntity } from '../locations/location.entity';
import { TestEntity } from '../tests/test.entity';
import { agentResult, probeResultDocument } from './agent-results.spec-helper';
import { ResultEntity } from './result.entity';
import { dayOf, partitionName, ResultsRepository } from './results.repository';
import { InvalidResultError, ResultsService, SLOT_WINDOW_MS } from './results.service';
import { RunResultEntity } from './run.entity';

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/** The whole suite on both databases the control plane runs on: PostgreSQL 15 and the embedded PGlite. */
describe.each(BACKENDS)(`${ResultsService.name} on %s`, (backend: Backend) => {
  let database: TestDatabase | undefined;
  let url: string;
  const open: DataSource[] = [];
  let db: DataSource;
  let repository: ResultsRepository;
  let service: ResultsService;
  const published: [ChangeChannel, string][] = [];

  const repositoryOf = (dataSource: DataSource) =>
    new ResultsRepository(
      dataSource,
      dataSource.getRepository(ResultEntity),
      dataSource.getRepository(RunResultEntity),
      dataSource.getRepository(TestEntity),
      dataSource.getRepository(LocationEntity),
    );

  /** A control-plane replica: its own connections and partition cache. */
  async function replica(): Promise<{ dataSource: DataSource; repository: ResultsRepository }> {
    const dataSource = new DataSource(dataSourceOptions(url, backend === 'embedded'));
    open.push(dataSource);
    await dataSource.initialize();
    return { dataSource, repository: repositoryOf(dataSource) };
  }

  beforeAll(async () => {
    database = await openTestDatabase(backend, 'results');
    url = database.url;
    ({ dataSource: db, repository } = await replica());
    const bus = new LocalChangeBus();
    bus.publish = (channel, payload) => {
      published.push([channel, payload]);
      return Promise.resolve();
    };
    service = new ResultsService(repository, bus);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(open.map((dataSource) => dataSource.destroy()));
    await database?.close();
  });

  // ---------- factories ----------

  async function createLocation(
    name = `loc-${randomUUID().slice(0, 8)}`,
  ): Promise<{ id: string; name: string }> {
    const id = randomUUID();
    await db.query(`INSERT INTO locations (id, name, kind) VALUES ($1, $2, 'private')`, [id, name]);
    return { id, name };
  }

  /** A test running from the given locations, at revision 7. */
  async function createTest(locations: readonly { id: string; name: string }[]): Promise<string> {
    const id = randomUUID();
    await db.query(
      `INSERT INTO tests (id, name, probe, schedule, retry, alert, location_names, revision)
     VALUES ($1, 'a test', '{"url":"wss://example.test/"}', '{"interval_s":60}', '{}', '{}', $2, 7)`,
      [id, locations.map((l) => l.name)],
    );
    for (const location of locations) {
      await db.query(`INSERT INTO test_locations (test_id, location_id) VALUES ($1, $2)`, [id, location.id]);
    }
    return id;
  }

  /** The slot `minutesAgo` whole minutes before now. */
  const slot = (minutesAgo: number) =>
    new Date((Math.floor(Date.now() / MINUTE_MS) - minutesAgo) * MINUTE_MS);

  async function storedRows(
    testId: string,
  ): Promise<{ result_id: string; location_id: string; slot: Date }[]> {
    return db.query(
      `SELECT result_id, location_id, slot_time AS slot FROM results WHERE test_id = $1 ORDER BY slot_time`,
      [testId],
    );
  }

  async function ingestError(promise: Promise<unknown>): Promise<InvalidResultError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidResultError);
    return error as InvalidResultError;
  }

  // ---------- ingest ----------

  describe('ingest', () => {
    it('stores a batch once: the same batch again is all duplicates', async () => {
      const location = await createLocation();
      const testId = await createTest([location]);
      const batch = [1, 2, 3].map((m) => agentResult({ test_id: testId, slot_time: slot(m) }));

      expect(await service.ingest(location.id, 'agent-1', batch)).toEqual({
        inserted: 3,
        duplicates: 0,
        discarded: 0,
      });
      expect(await service.ingest(location.id, 'agent-1', batch)).toEqual({
        inserted: 0,
        duplicates: 3,
        discarded: 0,
      });
      const rows = await storedRows(testId);
      expect(rows.map((r) => r.result_id)).toEqual(batch.map((r) => r.result_id).reverse());
    });

    it('keeps one result per test, location and slot: the first to arrive', async () => {
      const [a, b] = [await createLocation(), await createLocation()];
      const testId = await createTest([a, b]);
      const first = agentResult({ test_id: testId, slot_time: slot(5) });
      const again = agentResult({ test_id: testId, slot_time: slot(5) });
      const twiceInOneBatch = agentResult({ test_id: testId, slot_time: slot(6) });

      expect(await service.ingest(a.id, 'agent-1', [first])).toMatchObject({ inserted: 1 });
      expect(await service.ingest(a.id, 'agent-2', [again, twiceInOneBatch, { ...twiceInOneBatch }])).toEqual(
        { inserted: 1, duplicates: 2, discarded: 0 },
      );
      // The same slot from another location is another result.
      expect(await service.ingest(b.id, 'agent-3', [again])).toMatchObject({ inserted: 1 });

      const rows = await storedRows(testId);
      expect(rows.filter((r) => r.location_id === a.id).map((r) => r.result_id)).toEqual([
        twiceInOneBatch.result_id,
        first.result_id,
      ]);
    });

    it('stores every measured field and the document as sent', async () => {
      const location = await createLocation();
      const testId = await createTest([location]);
      const document = probeResultDocument({ success: false, value: null });
      const sent = agentResult({
        test_id: testId,
        test_revision: 9_000_000_000,
        slot_time: slot(1),
        started_time: new Date(slot(1).getTime() + 1234),
        attempts: 3,
        success: false,
        value: undefined,
        reason: 'ws_reply_timeout',
        cause: 'reply_timeout',
        category: 'TIMEOUT',
        open_ms: 12.5,
        round_trip_ms: undefined,
        total_ms: 5003.25,
        close_code: undefined,
        tls_not_after: new Date('2026-03-01T12:00:00.123Z'),
        // As the agent encodes it: any whitespace and key order stay as they are.
        result_json: Buffer.from(`  ${JSON.stringify(document, null, 1)}`),
      });
      await service.ingest(location.id, 'agent-7', [sent]);

      const page = await service.list(testId, {});
      expect(page.items).toEqual([
        {
          result_id: sent.result_id,
          test_id: testId,
          test_revision: 9_000_000_000,
          location: location.name,
          location_id: location.id,
          agent_id: 'agent-7',
          run_id: null,
          slot_time: sent.slot_time!.toISOString(),
          started_at: sent.started_time!.toISOString(),
          received_at: expect.any(String) as string,
          attempts: 3,
          success: false,
          value: null,
          reason: 'ws_reply_timeout',
          cause: 'reply_timeout',
          category: 'TIMEOUT',
          open_ms: 12.5,
          round_trip_ms: null,
          total_ms: 5003.25,
          close_code: null,
          tls_not_after: '2026-03-01T12:00:00.123Z',
          result: document,
        },
      ]);
      const [raw] = await db.query<{ text: string }[]>(
        `SELECT result::text AS text FROM results WHERE result_id = $1`,
        [sent.result_id],
      );
      expect(raw!.text).toBe(Buffer.from(sent.result_json).toString());
    });

    it('discards the results of deleted tests and of slots outside the window, and counts them', async () => {
      const location = await createLocation();
      const testId = await createTest([location]);
      const deleted = await createTest([location]);
      await db.query(`DELETE FROM tests WHERE id = $1`, [deleted]);
      const now = Date.now();

      const outcome = await service.ingest(location.id, 'agent-1', [
        agentResult({ test_id: testId, slot_time: slot(1) }),
        agentResult({ test_id: deleted, slot_time: slot(1) }),
        agentResult({ test_id: randomUUID(), slot_time: slot(2) }),
        agentResult({ test_id: testId, slot_time: new Date(now - SLOT_WINDOW_MS.past - DAY_MS) }),
        agentResult({ test_id: testId, slot_time: new Date(now + SLOT_WINDOW_MS.future + DAY_MS) }),
      ]);

      expect(outcome).toEqual({ inserted: 1, duplicates: 0, discarded: 4 });
      expect(await storedRows(testId)).toHaveLength(1);
      expect(await storedRows(deleted)).toHaveLength(0);
    });

    it('refuses a batch with an invalid document, naming the result, and stores none of it', async () => {
      const location = await createLocation();
      const testId = await createTest([location]);
      const valid = () => agentResult({ test_id: testId, slot_time: slot(Math.floor(Math.random() * 1000)) });
      const cases: [Buffer, string][] = [
        [Buffer.from('{"success": tru'), 'results[2].result_json: not valid JSON'],
        [Buffer.from('{"a": 1} trailing'), 'results[2].result_json: not valid JSON'],
        [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'results[2].result_json: not valid UTF-8'],
        [Buffer.from('{"a": "\u0000"}'), 'results[2].result_json: contains a NUL byte'],
        [Buffer.from('[1, 2]'), 'results[2].result_json: not a JSON object'],
        [Buffer.from('  "text"'), 'results[2].result_json: not a JSON object'],
        [Buffer.alloc(0), 'results[2].result_json: not a JSON object'],
      ];
      for (const [document, message] of cases) {
        const batch = [valid(), valid(), valid(), valid()];
        batch[2] = { ...batch[2]!, result_json: document };
        const error = await ingestError(service.ingest(location.id, 'agent-1', batch));
        expect(error.message).toBe(message);
        expect(error).toMatchObject({ index: 2, field: 'result_json', path: 'results[2].result_json' });
        expect(error.fieldErrors).toEqual([
          expect.objectContaining({ path: 'results[2].result_json', message }),
        ]);
      }
      expect(await storedRows(testId)).toEqual([]);
    });

    it('refuses malformed identifiers, a missing slot, times out of range and NUL in text, naming the field', async () => {
      const location = await createLocation();
      const testId = await createTest([location]);
      const cases: [Partial<Parameters<typeof agentResult>[0]>, string][] = [
        [{ test_id: 'not-a-uuid' }, 'results[1].test_id: not a UUID'],
        [{ result_id: '' }, 'results[1].result_id: not a UUID'],
        [{ run_id: 'run-1' }, 'results[1].run_id: not a UUID'],
        [{ slot_time: undefined }, 'results[1].slot_time: missing'],
        [{ close_code: 70_000 }, 'results[1].close_code: out of range (0 to 65535)'],
        [{ started_time: new Date(NaN) }, 'results[1].started_time: out of range (years 1 to 9999)'],
        [
          { tls_not_after: new Date(Date.UTC(10_000, 0, 1)) },
          'results[1].tls_not_after: out of range (years 1 to 9999)',
        ],
        [{ reason: 'closed\0' }, 'results[1].reason: contains a NUL byte'],
      ];
      for (const [overrides, message] of cases) {
        const batch = [agentResult({ test_id: testId }), agentResult({ test_id: testId, ...overrides })];
        expect((await ingestError(service.ingest(location.id, 'agent-1', batch))).message).toBe(message);
      }
      expect(await storedRows(testId)).toEqual([]);
    });

    it('puts results on either side of midnight into the partitions of their days', async () => {
      const location = await createLocation();
      const testId = await createTest([location]);
      const today = dayOf(Date.now());
      const midnight = today * DAY_MS;
      const batch = [midnight - 1, midnight, midnight + 1].map((ms) =>
        agentResult({ test_id: testId, slot_time: new Date(ms) }),
      );
      // A repository of its own: its cache knows no partition yet.
      const fresh = new ResultsService(repositoryOf(db), new LocalChangeBus());
      const outcome = await fresh.ingest(location.id, 'a', batch);
      expect(outcome.inserted).toBe(3);

      const placed = await db.query<{ partition: string; slot: Date }[]>(
        `SELECT tableoid::regclass::text AS partition, slot_time AS slot FROM results
          WHERE test_id = $1 ORDER BY slot_time`,
        [testId],
      );
      expect(placed.map((p) => p.partition)).toEqual([
        partitionName(today - 1),
        partitionName(today),
        partitionName(today),
      ]);
      expect(partitionName(today - 1)).toMatch(/^results_p\d{8}$/);
    });

    // The embedded database serves one replica with one connection.
    it.skipIf(backend === 'embedded')(
      'creates the same partitions from concurrent replicas without an error',
      async () => {
        const replicas = await Promise.all([replica(), replica(), replica(), replica()]);
        // Days no other test touches, in a different order on each replica.
        const days = [40_001, 40_002, 40_003, 40_004, 40_005];
        await Promise.all(
          replicas.flatMap(({ repository: r }, i) => [
            r.ensurePartitions(i % 2 ? [...days].reverse() : days),
            r.ensurePartitions(days),
          ]),
        );
        const [found] = await db.query<{ names: string[] }[]>(
          `SELECT array_agg(c.relname::text ORDER BY c.relname) AS names
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'results'::regclass AND c.relname = ANY($1)`,
          [days.map(partitionName)],
        );
        expect(found!.names).toEqual(days.map(partitionName));
      },
    );

    it('is a no-op for an empty batch', async () => {
      expect(await service.ingest(randomUUID(), 'agent-1', [])).toEqual({
        inserted: 0,
        duplicates: 0,
        discarded: 0,
      });
    });
  });

  // ---------- the results API ----------

  describe('list', () => {
    it('pages newest first and filters by range, location, agent and outcome', async () => {
      const [a, b] = [await createLocation(), await createLocation()];
      const testId = await createTest([a, b]);
      for (const [location, agent] of [
        [a, 'agent-a'],
        [b, 'agent-b'],
      ] as const) {
        await service.ingest(
          location.id,
          agent,
          [0, 1, 2, 3, 4].map((m) =>
            agentResult({ test_id: testId, slot_time: slot(m * 10), success: m !== 2 }),
          ),
        );
      }
      const seen: string[] = [];
      let token: string | undefined;
      do {
        const page = await service.list(testId, { page_size: '3', ...(token ? { page_token: token } : {}) });
        seen.push(...page.items.map((r) => `${r.slot_time} ${r.location}`));
        token = page.next_page_token ?? undefined;
      } while (token);
      expect(seen).toHaveLength(10);
      // Newest slot first; within a slot, by location id, descending.
      const byId = [a, b].sort((x, y) => y.id.localeCompare(x.id));
      const expected = [0, 1, 2, 3, 4].flatMap((m) =>
        byId.map((l) => `${slot(m * 10).toISOString()} ${l.name}`),
      );
      expect(seen).toEqual(expected);

      const names = async (query: Record<string, string>) =>
        (await service.list(testId, query)).items.map((r) => `${r.location} ${r.success}`);
      expect(await names({ location: a.name, outcome: 'failure' })).toEqual([`${a.name} false`]);
      expect(await names({ agent: 'agent-b', outcome: 'success' })).toHaveLength(4);
      expect(
        await names({ from: slot(25).toISOString(), to: slot(5).toISOString(), location: b.name }),
      ).toEqual([`${b.name} true`, `${b.name} false`]);
      expect(await names({ location: 'nowhere' })).toEqual([]);
      // The default range is the last 24 hours.
      expect(await names({ to: new Date(Date.now() - 2 * DAY_MS).toISOString() })).toEqual([]);
    });

    it('names the field and the rule of an invalid query, and refuses an unknown test', async () => {
      const testId = await createTest([await createLocation()]);
      const invalid = async (query: Record<string, string>) => {
        try {
          await service.list(testId, query);
        } catch (error) {
          return (error as { fieldErrors: { path: string; rule: string }[] }).fieldErrors.map(
            (e) => `${e.path} ${e.rule}`,
          );
        }
        throw new Error('expected a validation error');
      };
      expect(await invalid({ from: 'yesterday', outcome: 'maybe', page_size: '0' })).toEqual(
        expect.arrayContaining(['from format', 'outcome enum', 'page_size min']),
      );
      expect(await invalid({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' })).toEqual([
        'to after_from',
      ]);
      expect(await invalid({ page_token: 'garbage' })).toEqual(['page_token page_token']);
      expect(await invalid({ sort: 'asc' })).toEqual(['sort unknown_field']);
      await expect(service.list(randomUUID(), {})).rejects.toBeInstanceOf(NotFoundError);
    });
  });

  // ---------- on-demand runs ----------

  describe('runs', () => {
    it('creates a pending row per location, announces the run, and a result completes its location once', async () => {
      const [a, b] = [await createLocation('run-a'), await createLocation('run-b')];
      const testId = await createTest([a, b]);
      const run = await service.createRun(testId, null);
      expect(run).toMatchObject({
        test_id: testId,
        test_revision: 7,
        done: false,
        locations: [
          { location: 'run-a', location_id: a.id, status: 'pending', agent_id: null, result: null },
          { location: 'run-b', location_id: b.id, status: 'pending', agent_id: null, result: null },
        ],
      });
      expect(published).toContainEqual(['wsmon_run', run.id]);

      expect(await repository.markRunLocation(run.id, a.id, 'dispatched', 'agent-a')).toBe(true);
      expect(await repository.markRunLocation(run.id, a.id, 'no_agent')).toBe(false);
      expect(await repository.markRunLocation(run.id, b.id, 'no_agent')).toBe(true);
      const rows = (await repository.findRun(run.id))!.locations;
      expect(Object.fromEntries(rows.map((l) => [l.locationId, [l.status, l.agentId]]))).toEqual({
        [a.id]: ['dispatched', 'agent-a'],
        [b.id]: ['no_agent', null],
      });

      const result = agentResult({ test_id: testId, run_id: run.id, slot_time: new Date() });
      expect(await service.ingest(a.id, 'agent-a2', [result])).toEqual({
        inserted: 1,
        duplicates: 0,
        discarded: 0,
      });
      expect(
        await service.ingest(a.id, 'agent-a2', [{ ...result, result_id: randomUUID(), success: false }]),
      ).toEqual({ inserted: 0, duplicates: 1, discarded: 0 });
      // Not a location of the run, not its test, not a run at all.
      const c = await createLocation();
      expect(
        await service.ingest(c.id, 'agent-c', [agentResult({ test_id: testId, run_id: run.id })]),
      ).toEqual({ inserted: 0, duplicates: 0, discarded: 1 });
      expect(
        await service.ingest(b.id, 'agent-b', [
          agentResult({ test_id: randomUUID(), run_id: run.id }),
          agentResult({ test_id: testId, run_id: randomUUID() }),
        ]),
      ).toEqual({ inserted: 0, duplicates: 0, discarded: 2 });
      expect(await storedRows(testId)).toEqual([]);

      const done = await service.getRun(run.id, {});
      expect(done.done).toBe(true);
      expect(done.locations[0]).toMatchObject({
        location: 'run-a',
        status: 'completed',
        agent_id: 'agent-a2',
        result: {
          result_id: result.result_id,
          run_id: run.id,
          success: true,
          location: 'run-a',
          result: probeResultDocument(),
        },
      });
      expect(done.locations[1]).toMatchObject({ location: 'run-b', status: 'no_agent', result: null });
      // A result that overtakes the no_agent mark still completes the location.
      expect(
        await service.ingest(b.id, 'agent-b', [agentResult({ test_id: testId, run_id: run.id })]),
      ).toMatchObject({ inserted: 1 });
    });

    it('waits for the run to finish, at most wait_s', async () => {
      const a = await createLocation();
      const testId = await createTest([a]);
      const run = await service.createRun(testId, null);

      const started = Date.now();
      expect((await service.getRun(run.id, { wait_s: '1' })).done).toBe(false);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);

      const waiting = service.getRun(run.id, { wait_s: '10' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await service.ingest(a.id, 'agent-1', [agentResult({ test_id: testId, run_id: run.id })]);
      const finished = await waiting;
      expect(finished.locations[0]!.status).toBe('completed');
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('refuses unknown tests and runs, and a wait out of range', async () => {
      await expect(service.createRun(randomUUID(), null)).rejects.toBeInstanceOf(NotFoundError);
      await expect(service.createRun('not-a-uuid', null)).rejects.toBeInstanceOf(NotFoundError);
      await expect(service.getRun(randomUUID(), {})).rejects.toBeInstanceOf(NotFoundError);
      await expect(service.getRun(randomUUID(), { wait_s: '61' })).rejects.toMatchObject({
        fieldErrors: [expect.objectContaining({ path: 'wait_s', rule: 'max' })],
      });
    });

    it('goes with its test: deleting the test deletes its runs', async () => {
      const a = await createLocation();
      const testId = await createTest([a]);
      const run = await service.createRun(testId, null);
      await db.query(`DELETE FROM tests WHERE id = $1`, [testId]);
      expect(await repository.findRun(run.id)).toBeNull();
    });
  });
});
