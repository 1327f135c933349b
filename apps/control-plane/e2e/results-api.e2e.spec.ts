import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  ConfigServiceClient,
  ResultOutcome,
  RunLocationStatus,
  type CreateRunResponse,
  type GetRunResponse,
  type ListResultsResponse,
} from '@wsmon/proto';
import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from './support/control-plane-process';
import { fieldViolations } from './support/grpc-status';

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/** A ProbeResult document as an agent stores it (its content is the agent's business, not checked here). */
const document = (i: number) => ({ success: i % 3 !== 0, value: 10 + i, timings: { total_ms: 20 + i } });

/**
 * The results and runs API over REST (on both databases) and gRPC. Results are written into the database
 * directly, as the agent stream's ingest would: on PostgreSQL only, the embedded database admitting the
 * control plane's connection alone.
 */
describe.each(['postgres', 'embedded'] as const)('results and runs API on %s', (backend) => {
  let pg: TestPostgres | undefined;
  let dataDir: string | undefined;
  let databaseUrl: string | undefined;
  let cp: ControlPlaneProcess;
  const adminKey = newAdminKey();
  let admin: ReturnType<typeof restClient>;
  let editor: ReturnType<typeof restClient>;
  let editorKeyId: string;
  let viewer: ReturnType<typeof restClient>;
  let testId: string;
  const locationIds: Record<string, string> = {};

  beforeAll(async () => {
    if (backend === 'postgres') {
      pg = await startTestPostgres();
      databaseUrl = await pg.createDatabase('results_api');
    } else {
      dataDir = await mkdtemp(join(tmpdir(), 'wsmon-results-e2e-'));
    }
    cp = await startControlPlane(
      backend === 'postgres'
        ? { DATABASE_URL: databaseUrl!, WSMON_ADMIN_KEY: adminKey, WSMON_SECRET_KEY: newSecretKey() }
        : { WSMON_DATA_DIR: dataDir!, WSMON_ADMIN_KEY: adminKey },
    );
    admin = restClient(cp.httpUrl, adminKey);
    const editorKey = await admin<any>('POST', '/api-keys', { name: 'editor', role: 'editor' });
    editorKeyId = editorKey.body.api_key.id;
    editor = restClient(cp.httpUrl, editorKey.body.key);
    viewer = restClient(
      cp.httpUrl,
      (await admin<any>('POST', '/api-keys', { name: 'v', role: 'viewer' })).body.key,
    );
    for (const name of ['eu-west', 'us-east']) {
      const created = await admin<any>('POST', '/locations', { name });
      expect(created.status).toBe(201);
      locationIds[name] = created.body.id;
    }
    const test = await editor<any>('POST', '/tests', {
      name: 'prices feed',
      probe: { url: 'wss://prices.example.com/ws' },
      schedule: { interval_s: 60 },
      locations: ['us-east', 'eu-west'],
    });
    expect(test.status).toBe(201);
    testId = test.body.id;
  }, 120_000);

  afterAll(async () => {
    await cp?.stop();
    await pg?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  function expectFieldErrors(response: { status: number; body: any }, expected: string[]) {
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_argument');
    expect(response.body.error.field_errors.map((e: any) => `${e.path} ${e.rule}`)).toEqual(
      expect.arrayContaining(expected),
    );
  }

  describe('results', () => {
    it.runIf(backend === 'postgres')('lists a test’s results newest first, by page, filtered', async () => {
      // Slots of tomorrow: its partition is made at start, whatever the time of day.
      const tomorrow = (Math.floor(Date.now() / DAY_MS) + 1) * DAY_MS;
      const client = new Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        for (let i = 0; i < 6; i++) {
          await client.query(
            `INSERT INTO results (test_id, location_id, slot_time, result_id, agent_id, test_revision, attempts,
                                  success, value, total_ms, result)
             VALUES ($1, $2, $3, $4, $5, 1, 1, $6, $7, $8, $9)`,
            [
              testId,
              locationIds[i % 2 ? 'eu-west' : 'us-east'],
              new Date(tomorrow + Math.floor(i / 2) * MINUTE_MS),
              randomUUID(),
              `agent-${i % 2}`,
              document(i).success,
              document(i).value,
              document(i).timings.total_ms,
              JSON.stringify(document(i)),
            ],
          );
        }
      } finally {
        await client.end();
      }
      const range = `from=${new Date(tomorrow).toISOString()}&to=${new Date(tomorrow + DAY_MS).toISOString()}`;
      const first = await viewer<any>('GET', `/tests/${testId}/results?${range}&page_size=4`);
      expect(first.status).toBe(200);
      expect(first.body.items).toHaveLength(4);
      expect(first.body.items[0]).toMatchObject({
        test_id: testId,
        slot_time: new Date(tomorrow + 2 * MINUTE_MS).toISOString(),
        attempts: 1,
        total_ms: expect.any(Number),
        result: { timings: { total_ms: expect.any(Number) } },
      });
      const second = await viewer<any>(
        'GET',
        `/tests/${testId}/results?${range}&page_size=4&page_token=${first.body.next_page_token}`,
      );
      expect(second.body.items).toHaveLength(2);
      expect(second.body.next_page_token).toBeNull();
      const all = [...first.body.items, ...second.body.items];
      expect(all.map((r: any) => r.slot_time)).toEqual(
        [...all.map((r: any) => r.slot_time)].sort().reverse(),
      );
      expect(all.map((r: any) => r.result.value).sort()).toEqual([10, 11, 12, 13, 14, 15]);

      const filtered = await viewer<any>(
        'GET',
        `/tests/${testId}/results?${range}&location=eu-west&outcome=failure`,
      );
      expect(filtered.body.items.map((r: any) => [r.location, r.success, r.result.value])).toEqual([
        ['eu-west', false, 13],
      ]);
      // The default range is the last 24 hours: tomorrow's slots are not in it.
      expect((await viewer<any>('GET', `/tests/${testId}/results`)).body.items).toEqual([]);
    });

    it('answers an empty page for a test without results, 404 for an unknown test', async () => {
      const listed = await viewer<any>('GET', `/tests/${testId}/results?agent=nobody`);
      expect(listed.status).toBe(200);
      expect(listed.body).toEqual({ items: [], next_page_token: null });
      expect((await viewer('GET', `/tests/${randomUUID()}/results`)).status).toBe(404);
    });

    it('names the field and the rule of every invalid query parameter', async () => {
      expectFieldErrors(
        await viewer(
          'GET',
          `/tests/${testId}/results?from=yesterday&outcome=maybe&page_size=0&location=Bad_Name`,
        ),
        ['from format', 'outcome enum', 'page_size min', 'location format'],
      );
      expectFieldErrors(
        await viewer('GET', `/tests/${testId}/results?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`),
        ['to after_from'],
      );
      expectFieldErrors(await viewer('GET', `/tests/${testId}/results?page_token=nonsense`), [
        'page_token page_token',
      ]);
      expectFieldErrors(await viewer('GET', `/tests/${testId}/results?order=asc`), ['order unknown_field']);
    });
  });

  describe('on-demand runs', () => {
    it('creates a run for editors: 202, each location pending (or at once without an agent)', async () => {
      expect((await viewer('POST', `/tests/${testId}/runs`)).status).toBe(403);
      const created = await editor<any>('POST', `/tests/${testId}/runs`);
      expect(created.status).toBe(202);
      expect(created.body).toMatchObject({
        id: expect.any(String),
        test_id: testId,
        created_at: expect.any(String),
        requested_by: editorKeyId,
        locations: [
          { location: 'eu-west', location_id: locationIds['eu-west'], status: 'pending', result: null },
          { location: 'us-east', location_id: locationIds['us-east'], status: 'pending', result: null },
        ],
      });

      // No agent is connected: the agent side marks every location no_agent, and the wait ends then.
      const started = Date.now();
      const run = await viewer<any>('GET', `/runs/${created.body.id}?wait_s=10`);
      expect(run.status).toBe(200);
      expect(run.body.locations.map((l: any) => [l.location, l.status])).toEqual([
        ['eu-west', 'no_agent'],
        ['us-east', 'no_agent'],
      ]);
      expect(run.body.done).toBe(true);
      expect(Date.now() - started).toBeLessThan(9000);
    });

    it('refuses unknown tests and runs, and an out-of-range wait, naming the field', async () => {
      expect((await editor('POST', `/tests/${randomUUID()}/runs`)).status).toBe(404);
      expect((await viewer('GET', `/runs/${randomUUID()}`)).status).toBe(404);
      expect((await viewer('GET', '/runs/not-a-run')).status).toBe(404);
      expectFieldErrors(await viewer('GET', `/runs/${randomUUID()}?wait_s=61`), ['wait_s max']);
      expectFieldErrors(await viewer('GET', `/runs/${randomUUID()}?wait_s=soon`), ['wait_s type']);
    });
  });

  describe.runIf(backend === 'postgres')('over gRPC', () => {
    let client: ConfigServiceClient;
    beforeAll(() => {
      client = new ConfigServiceClient(cp.grpcAddress, credentials.createInsecure());
    });
    afterAll(() => client?.close());

    const call = <Res>(
      invoke: (metadata: Metadata, cb: (e: ServiceError | null, r: Res) => void) => unknown,
    ) =>
      new Promise<Res>((resolve, reject) => {
        const metadata = new Metadata();
        metadata.set('authorization', `Bearer ${adminKey}`);
        invoke(metadata, (error, response) => (error ? reject(error) : resolve(response)));
      });

    it('lists results, creates and follows a run as REST does', async () => {
      const tomorrow = (Math.floor(Date.now() / DAY_MS) + 1) * DAY_MS;
      const listed = await call<ListResultsResponse>((md, cb) =>
        client.listResults(
          {
            test_id: testId,
            from: new Date(tomorrow),
            to: new Date(tomorrow + DAY_MS),
            location: 'us-east',
            agent: '',
            outcome: ResultOutcome.RESULT_OUTCOME_SUCCESS,
            page_size: 0,
            page_token: '',
          },
          md,
          cb,
        ),
      );
      expect(listed.results.map((r) => [r.location, r.success, r.result?.['value']])).toEqual([
        ['us-east', true, 14],
        ['us-east', true, 12],
      ]);

      const created = await call<CreateRunResponse>((md, cb) =>
        client.createRun({ test_id: testId }, md, cb),
      );
      expect(created.run?.locations.map((l) => l.location)).toEqual(['eu-west', 'us-east']);
      const got = await call<GetRunResponse>((md, cb) =>
        client.getRun({ id: created.run!.id, wait_s: 10 }, md, cb),
      );
      expect(got.run?.done).toBe(true);
      expect(got.run?.locations.map((l) => l.status)).toEqual([
        RunLocationStatus.RUN_LOCATION_STATUS_NO_AGENT,
        RunLocationStatus.RUN_LOCATION_STATUS_NO_AGENT,
      ]);
    });

    it('names the field of an invalid request', async () => {
      const error = await call((md, cb) => client.getRun({ id: randomUUID(), wait_s: 99 }, md, cb)).then(
        () => undefined,
        (e: unknown) => e as ServiceError,
      );
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      expect(fieldViolations(error!).map((v) => `${v.field} ${v.reason}`)).toEqual(['wait_s max']);
      const unknownOutcome = await call((md, cb) =>
        client.listResults(
          {
            test_id: testId,
            location: '',
            agent: '',
            outcome: 7 as ResultOutcome,
            page_size: 0,
            page_token: '',
          },
          md,
          cb,
        ),
      ).then(
        () => undefined,
        (e: unknown) => e as ServiceError,
      );
      expect(fieldViolations(unknownOutcome!).map((v) => `${v.field} ${v.reason}`)).toEqual(['outcome enum']);
    });
  });
});
