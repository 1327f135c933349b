import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { familyNamed, parseExposition, sampleValue, type ParsedFamily } from '@wsmon/metrics/parser';
import type { AgentServiceClient } from '@wsmon/proto/agent';
import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentClient, openAgentStream, scheduledResult, type ScriptedAgent } from './support/agent-client';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from './support/control-plane-process';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/**
 * `/metrics` of the built control plane, on both databases: results arrive from scripted agents over real
 * gRPC, and the whole exposition must pass the strict parser. On PostgreSQL the endpoint takes a bearer
 * token (WSMON_METRICS_TOKEN); embedded, it is open like /healthz.
 */
describe.each(['postgres', 'embedded'] as const)('GET /metrics on %s', (backend) => {
  let pg: TestPostgres | undefined;
  let dataDir: string | undefined;
  let cp: ControlPlaneProcess;
  let client: AgentServiceClient;
  const agents: ScriptedAgent[] = [];
  const tests: Record<string, string> = {};
  const secured = backend === 'postgres';
  const now = Date.now();
  const notAfter = new Date('2031-05-01T12:00:00.000Z');

  /** `null`: no Authorization header. */
  const scrape = async (token: string | null = secured ? METRICS_TOKEN : null) =>
    fetch(`${cp.httpUrl}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  beforeAll(async () => {
    const adminKey = newAdminKey();
    const env: Record<string, string> = { WSMON_ADMIN_KEY: adminKey };
    if (backend === 'postgres') {
      pg = await startTestPostgres();
      Object.assign(env, {
        DATABASE_URL: await pg.createDatabase('metrics'),
        WSMON_SECRET_KEY: newSecretKey(),
        WSMON_METRICS_TOKEN: METRICS_TOKEN,
      });
    } else {
      dataDir = await mkdtemp(join(tmpdir(), 'wsmon-metrics-e2e-'));
      env.WSMON_DATA_DIR = dataDir;
    }
    cp = await startControlPlane(env);
    const admin = restClient(cp.httpUrl, adminKey);
    for (const name of ['eu-west', 'us-east', 'spare']) {
      expect((await admin('POST', '/locations', { name })).status).toBe(201);
    }
    for (const [name, locations, enabled] of [
      ['chat "gateway"', ['eu-west', 'us-east'], true],
      ['paused feed', ['eu-west'], false],
    ] as const) {
      const created = await admin<{ id: string }>('POST', '/tests', {
        name,
        enabled,
        probe: { url: 'wss://chat.example.com/ws', ping_mode: 'message', send_message: 'ping' },
        schedule: { interval_s: 60 },
        locations,
      });
      expect(created.status).toBe(201);
      tests[name] = created.body.id;
    }
    client = agentClient(cp.grpcAddress);
    const chat = tests['chat "gateway"']!;
    const batches: Record<string, ReturnType<typeof scheduledResult>[]> = {
      'eu-west': [
        scheduledResult(chat, 1, new Date(now - 120_000)),
        {
          ...scheduledResult(chat, 2, new Date(now - 60_000)),
          success: false,
          open_ms: undefined,
          round_trip_ms: undefined,
          total_ms: 1.5,
          reason: 'ws_open_failed',
          cause: 'connection_refused',
          category: 'network',
        },
        scheduledResult(tests['paused feed']!, 3, new Date(now - 60_000)),
      ],
      'us-east': [
        { ...scheduledResult(chat, 1, new Date(now - 60_000)), round_trip_ms: 2.5, tls_not_after: notAfter },
      ],
    };
    for (const [location, results] of Object.entries(batches)) {
      const token = await admin<{ secret: string }>('POST', `/locations/${location}/tokens`, {});
      const agent = openAgentStream(client, token.body.secret);
      agents.push(agent);
      await agent.next('end_of_snapshot');
      agent.send({ result_batch: { results } });
      expect((await agent.next('result_ack')).up_to_sequence).toBe(results.length);
    }
    const refused = openAgentStream(client, `wsa_000000000000_${'A'.repeat(43)}`);
    expect((await refused.ended).code).toBe(status.UNAUTHENTICATED);
  }, 120_000);

  afterAll(async () => {
    for (const agent of agents) agent.cancel();
    client?.close();
    await cp?.stop();
    await pg?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it.runIf(secured)('takes the bearer token WSMON_METRICS_TOKEN when it is set', async () => {
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape('wrong-token-0123456789')).status).toBe(401);
    expect((await scrape()).status).toBe(200);
  });

  describe('the exposition', () => {
    let families: ParsedFamily[];
    let text: string;
    const chat = (location: string) => ({
      test: 'chat "gateway"',
      test_id: tests['chat "gateway"']!,
      location,
    });

    beforeAll(async () => {
      const response = await scrape();
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
      text = await response.text();
      // The strict parser throws on anything a Prometheus scrape would refuse.
      families = parseExposition(text);
    });

    it.runIf(spawnSync('promtool', ['--version']).status === 0)(
      'passes promtool check metrics (its lint too)',
      () => {
        const checked = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        expect(checked.stdout + checked.stderr).toBe('');
        expect(checked.status).toBe(0);
      },
    );

    it("reports each test's latest result per location with the gauges of seed 004", () => {
      expect(sampleValue(families, 'probe_success', chat('eu-west'))).toBe(0);
      expect(sampleValue(families, 'probe_websocket_up', chat('eu-west'))).toBe(0);
      expect(sampleValue(families, 'probe_success', chat('us-east'))).toBe(1);
      expect(sampleValue(families, 'probe_websocket_up', chat('us-east'))).toBe(1);
      expect(sampleValue(families, 'probe_websocket_connection_duration_seconds', chat('us-east'))).toBe(
        0.0042,
      );
      expect(sampleValue(families, 'probe_duration_seconds', chat('us-east'))).toBe(0.0063);
      expect(sampleValue(families, 'probe_duration_seconds', chat('eu-west'))).toBe(0.0015);
      expect(sampleValue(families, 'probe_wsmon_round_trip_seconds', chat('us-east'))).toBe(0.0025);
      expect(sampleValue(families, 'probe_ssl_earliest_cert_expiry', chat('us-east'))).toBe(
        notAfter.getTime() / 1000,
      );
      expect(sampleValue(families, 'probe_wsmon_last_result_timestamp_seconds', chat('eu-west'))).toBe(
        (now - 60_000) / 1000,
      );
      expect(
        sampleValue(families, 'probe_wsmon_failure_info', {
          ...chat('eu-west'),
          reason: 'ws_open_failed',
          cause: 'connection_refused',
          category: 'network',
        }),
      ).toBe(1);
    });

    it('leaves out what was not measured, and paused tests', () => {
      const locationsOf = (name: string) =>
        familyNamed(families, name)?.samples.map((s) => s.labels.location);
      expect(locationsOf('probe_websocket_connection_duration_seconds')).toEqual(['us-east']);
      expect(locationsOf('probe_ssl_earliest_cert_expiry')).toEqual(['us-east']);
      const testsShown = new Set(familyNamed(families, 'probe_success')?.samples.map((s) => s.labels.test));
      expect([...testsShown]).toEqual(['chat "gateway"']);
    });

    it("reports the control plane's own health: agents and tests per location, streams, ingest and its lag", () => {
      const perLocation = (name: string) =>
        Object.fromEntries(familyNamed(families, name)!.samples.map((s) => [s.labels.location, s.value]));
      expect(perLocation('wsmon_control_plane_location_agents')).toEqual({
        'eu-west': 1,
        spare: 0,
        'us-east': 1,
      });
      expect(perLocation('wsmon_control_plane_location_tests')).toEqual({
        'eu-west': 1,
        spare: 0,
        'us-east': 1,
      });
      expect(sampleValue(families, 'wsmon_control_plane_agent_streams')).toBe(2);
      expect(sampleValue(families, 'wsmon_control_plane_agent_streams_opened_total')).toBe(2);
      expect(
        sampleValue(families, 'wsmon_control_plane_agent_stream_errors_total', { code: 'UNAUTHENTICATED' }),
      ).toBe(1);
      expect(sampleValue(families, 'wsmon_control_plane_results_ingested_total')).toBe(4);
      expect(familyNamed(families, 'wsmon_control_plane_ingest_lag_seconds')?.type).toBe('histogram');
      expect(sampleValue(families, 'wsmon_control_plane_ingest_lag_seconds_count')).toBe(4);
      // Slots a minute or two old: every result lands in the buckets from 60 s up.
      expect(sampleValue(families, 'wsmon_control_plane_ingest_lag_seconds_bucket', { le: '30' })).toBe(0);
      expect(sampleValue(families, 'wsmon_control_plane_ingest_lag_seconds_bucket', { le: '3600' })).toBe(4);
    });
  });
});
