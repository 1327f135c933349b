import { randomUUID } from 'node:crypto';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ConfigServiceClient, type GetTestSummaryRequest, type GetTestSummaryResponse } from '@wsmon/proto';
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

const MINUTE_MS = 60_000;

/**
 * The summary API over REST and gRPC, against the control plane as it runs (its roll-up job included).
 * Results are written into the database directly, with their rollup queue row in the same transaction, as
 * the agent stream's ingest writes them.
 */
describe('test summary API', () => {
  let pg: TestPostgres;
  let databaseUrl: string;
  let cp: ControlPlaneProcess;
  const adminKey = newAdminKey();
  let viewer: ReturnType<typeof restClient>;
  let viewerKey: string;
  let testId: string;
  const locationIds: Record<string, string> = {};

  beforeAll(async () => {
    pg = await startTestPostgres();
    databaseUrl = await pg.createDatabase('summary_api');
    cp = await startControlPlane({
      DATABASE_URL: databaseUrl,
      WSMON_ADMIN_KEY: adminKey,
      WSMON_SECRET_KEY: newSecretKey(),
    });
    const admin = restClient(cp.httpUrl, adminKey);
    viewerKey = (await admin<any>('POST', '/api-keys', { name: 'v', role: 'viewer' })).body.key;
    viewer = restClient(cp.httpUrl, viewerKey);
    for (const name of ['eu-west', 'us-east']) {
      locationIds[name] = (await admin<any>('POST', '/locations', { name })).body.id;
    }
    const test = await admin<any>('POST', '/tests', {
      name: 'prices feed',
      probe: { url: 'wss://prices.example.com/ws' },
      schedule: { interval_s: 60 },
      locations: ['us-east', 'eu-west'],
    });
    testId = test.body.id;

    // The last ten minutes, from both locations: every fifth result failed, closed with 1006.
    const lastMinute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - MINUTE_MS;
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query('BEGIN');
      for (const [l, name] of ['eu-west', 'us-east'].entries()) {
        for (let i = 0; i < 10; i++) {
          const failed = i % 5 === 0;
          await client.query(
            `INSERT INTO results (test_id, location_id, slot_time, result_id, agent_id, test_revision, attempts,
                                  success, reason, category, open_ms, round_trip_ms, total_ms, close_code, result)
             VALUES ($1, $2, $3, $4, 'agent-1', 1, 1, $5, $6, $7, $8, $9, $10, $11, '{}')`,
            [
              testId,
              locationIds[name],
              new Date(lastMinute - i * MINUTE_MS),
              randomUUID(),
              !failed,
              failed ? 'ws_closed_early' : null,
              failed ? 'CONNRESET' : null,
              10 * (l + 1) + i,
              failed ? null : 5 + i,
              30,
              failed ? 1006 : 1000,
            ],
          );
        }
      }
      await client.query(
        `INSERT INTO rollup_queue (location_id, test_ids, slot_times, result_count)
         SELECT location_id, array_agg(test_id), array_agg(slot_time), count(*)
           FROM results WHERE test_id = $1 GROUP BY location_id`,
        [testId],
      );
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
  }, 120_000);

  afterAll(async () => {
    await cp?.stop();
    await pg?.stop();
  });

  it('summarises a window per location and over all, with the last result and a series', async () => {
    const response = await viewer<any>('GET', `/tests/${testId}/summary?window=1h`);
    expect(response.status).toBe(200);
    const summary = response.body;
    expect(summary).toMatchObject({ test_id: testId, window: '1h', step_s: 60, latency_precision: 0.01 });
    expect(Date.parse(summary.to) - Date.parse(summary.from)).toBe(3_600_000);
    expect(summary.overall).toMatchObject({
      runs: 20,
      failures: 4,
      uptime_pct: 80,
      failure_reasons: [{ reason: 'ws_closed_early', count: 4 }],
      failure_categories: [{ category: 'CONNRESET', count: 4 }],
      close_codes: [
        { code: 1000, count: 16 },
        { code: 1006, count: 4 },
      ],
      closes: 20,
      abnormal_closes: 4,
      abnormal_close_rate: 0.2,
      handshake_ms: { count: 20, max: 29 },
      round_trip_ms: { count: 16, max: 14 },
    });
    // Handshakes of 10…19 ms (eu-west) and 20…29 ms (us-east): the median is the 10th, 19 ms, within 1 %.
    expect(Math.abs(summary.overall.handshake_ms.p50 - 19)).toBeLessThanOrEqual(0.19);
    // The last minute's results failed (i = 0): the latest of the two locations'.
    expect(summary.overall.last_result).toMatchObject({
      test_id: testId,
      success: false,
      reason: 'ws_closed_early',
      close_code: 1006,
    });
    expect(summary.overall.series.length).toBeGreaterThanOrEqual(60);
    expect(summary.overall.series.reduce((n: number, p: any) => n + p.runs, 0)).toBe(20);
    expect(
      summary.locations.map((l: any) => [l.location, l.stats.runs, l.stats.last_result?.location]),
    ).toEqual([
      ['eu-west', 10, 'eu-west'],
      ['us-east', 10, 'us-east'],
    ]);

    const one = await viewer<any>('GET', `/tests/${testId}/summary?window=24h&location=us-east`);
    expect(one.body.overall.runs).toBe(10);
    expect(one.body.locations.map((l: any) => l.location)).toEqual(['us-east']);
  });

  it('names the field and the rule of an invalid query; 404 for an unknown test or location', async () => {
    const invalid = await viewer<any>('GET', `/tests/${testId}/summary?window=2d&to=2026-01-01T00:00:00Z`);
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.field_errors.map((e: any) => `${e.path} ${e.rule}`)).toEqual(['window enum']);
    const noFrom = await viewer<any>('GET', `/tests/${testId}/summary?to=2026-01-01T00:00:00Z`);
    expect(noFrom.body.error.field_errors.map((e: any) => `${e.path} ${e.rule}`)).toEqual(['from required']);
    expect((await viewer('GET', `/tests/${randomUUID()}/summary`)).status).toBe(404);
    expect((await viewer('GET', `/tests/${testId}/summary?location=nowhere`)).status).toBe(404);
    expect((await restClient(cp.httpUrl, '')('GET', `/tests/${testId}/summary`)).status).toBe(401);
  });

  describe('over gRPC', () => {
    let client: ConfigServiceClient;
    beforeAll(() => {
      client = new ConfigServiceClient(cp.grpcAddress, credentials.createInsecure());
    });
    afterAll(() => client?.close());

    const summary = (request: Partial<GetTestSummaryRequest>) =>
      new Promise<GetTestSummaryResponse>((resolve, reject) => {
        const metadata = new Metadata();
        metadata.set('authorization', `Bearer ${viewerKey}`);
        client.getTestSummary(
          { test_id: testId, window: '', location: '', ...request },
          metadata,
          (error, response) => (error ? reject(error) : resolve(response)),
        );
      });

    it('answers the summary REST answers', async () => {
      const to = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS);
      const from = new Date(to.getTime() - 3_600_000);
      const [rest, grpc] = await Promise.all([
        viewer<any>('GET', `/tests/${testId}/summary?from=${from.toISOString()}&to=${to.toISOString()}`),
        summary({ from, to }),
      ]);
      const s = grpc.summary!;
      expect(s.window).toBeUndefined();
      expect(s.from).toEqual(from);
      expect(s.step_s).toBe(rest.body.step_s);
      expect(s.overall).toMatchObject({
        runs: rest.body.overall.runs,
        failures: rest.body.overall.failures,
        abnormal_close_rate: rest.body.overall.abnormal_close_rate,
        close_codes: rest.body.overall.close_codes,
        failure_reasons: rest.body.overall.failure_reasons,
        handshake_ms: rest.body.overall.handshake_ms,
      });
      expect(s.overall!.last_result?.result_id).toBe(rest.body.overall.last_result.result_id);
      expect(s.overall!.series).toHaveLength(rest.body.overall.series.length);
      expect(s.locations.map((l) => [l.location, l.stats?.runs])).toEqual(
        rest.body.locations.map((l: any) => [l.location, l.stats.runs]),
      );
    });

    it('refuses an invalid query with INVALID_ARGUMENT naming the field, and an unknown test with NOT_FOUND', async () => {
      const invalid = await summary({ window: '1h', from: new Date() }).catch((e: ServiceError) => e);
      expect((invalid as ServiceError).code).toBe(status.INVALID_ARGUMENT);
      expect(fieldViolations(invalid as ServiceError).map((v) => `${v.field} ${v.reason}`)).toEqual([
        'window exclusive',
      ]);
      const missing = await summary({ test_id: randomUUID() }).catch((e: ServiceError) => e);
      expect((missing as ServiceError).code).toBe(status.NOT_FOUND);
    });
  });
});
