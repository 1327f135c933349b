import { describe, expect, it } from 'vitest';
import { createAgentsCommand } from './agents.command';
import { FakeControlPlane, runCli } from './fixtures/fake-control-plane';
import { createLocationsCommand } from './locations.command';
import { createResultsCommand } from './results.command';
import { createStatusCommand } from './status.command';

const TEST_ID = '33333333-3333-4333-8333-333333333333';
const COMMANDS = [createResultsCommand, createStatusCommand, createAgentsCommand, createLocationsCommand];

const agent = (id: string, location: string, status: string) => ({
  id,
  location: { id: `loc-${location}`, name: location },
  hostname: 'probe-host',
  version: '0.1.0',
  status,
  last_heartbeat_at: '2025-11-21T08:00:05.123Z',
  last_seen_at: '2025-11-21T08:00:05.123Z',
  tests: 3,
  free_slots: 47,
  in_flight: 0,
  spool_depth: 0,
});

const statusItem = {
  test_id: TEST_ID,
  test_name: 'chat',
  state: 'alerting',
  locations: [
    {
      location: 'eu-west',
      status: 'unhealthy',
      since: '2025-11-21T07:55:00.000Z',
      last_result_at: '2025-11-21T08:00:00.000Z',
      reason: 'ws_open_failed',
      cause: 'connection_refused',
    },
    {
      location: 'us-east',
      status: 'no_agent',
      since: '2025-11-21T07:00:00.000Z',
      last_result_at: null,
      reason: 'no_agent',
      cause: null,
    },
  ],
};

function controlPlane() {
  return new FakeControlPlane()
    .on('GET', /^\/agents$/, (r) => ({
      body: [agent('a-1', 'eu-west', 'connected'), agent('a-2', 'us-east', 'disconnected')].filter(
        (a) => r.query.get('location') === null || a.location.name === r.query.get('location'),
      ),
    }))
    .on('GET', /^\/locations$/, {
      body: {
        items: [
          { name: 'eu-west', kind: 'managed', region: 'eu-west-1', labels: { tier: 'a' } },
          { name: 'us-east', kind: 'private', region: null, labels: {} },
        ],
        next_page_token: null,
      },
    })
    .on('GET', /^\/tests$/, {
      body: { items: [{ id: TEST_ID, name: 'chat', enabled: true, locations: [] }], next_page_token: null },
    })
    .on('GET', /^\/status$/, { body: { items: [statusItem], evaluated_at: '2025-11-21T08:00:06.000Z' } })
    .on('GET', new RegExp(`^/tests/${TEST_ID}/status$`), { body: statusItem })
    .on('GET', new RegExp(`^/tests/${TEST_ID}/results$`), (r) => ({
      body: {
        items: [
          {
            slot_time: '2025-11-21T08:00:00.000Z',
            location: 'eu-west',
            location_id: 'loc-eu-west',
            agent_id: 'a-1',
            success: false,
            open_ms: null,
            round_trip_ms: null,
            total_ms: 3.2,
            close_code: null,
            reason: 'ws_open_failed',
            cause: 'connection_refused',
            attempts: 1,
            from: r.query.get('from'),
          },
        ],
        next_page_token: null,
      },
    }));
}

const wsmon = (api: FakeControlPlane, ...argv: string[]) => runCli(COMMANDS, argv, { api });

describe('the listing commands', () => {
  it('wsmon agents: a table, filtered by location, or the API objects as JSON', async () => {
    const api = controlPlane();
    const table = await wsmon(api, 'agents');
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toBe(
      'ID   LOCATION  STATUS        VERSION  HOSTNAME    TESTS  FREE  IN FLIGHT  SPOOL  LAST SEEN',
    );
    expect(table.stdout).toContain(
      'a-1  eu-west   connected     0.1.0    probe-host      3    47          0      0  2025-11-21 08:00:05Z',
    );
    const json = await wsmon(api, 'agents', '--location', 'us-east', '--json');
    expect((JSON.parse(json.stdout) as { id: string }[]).map((a) => a.id)).toEqual(['a-2']);
    expect(api.requests.at(-1)?.query.get('location')).toBe('us-east');
  });

  it('wsmon locations: connected and known agents per location', async () => {
    const table = await wsmon(controlPlane(), 'locations');
    expect(table.stdout).toBe(
      [
        'NAME     KIND     REGION     AGENTS  LABELS',
        'eu-west  managed  eu-west-1     1/1  tier=a',
        'us-east  private                0/1',
        '',
      ].join('\n'),
    );
    const json = JSON.parse((await wsmon(controlPlane(), 'locations', '--json')).stdout) as unknown[];
    expect(json[0]).toMatchObject({ name: 'eu-west', agents: { connected: 1, total: 1 } });
  });

  it('wsmon status: one row per test and location, for every test or one named', async () => {
    const all = await wsmon(controlPlane(), 'status');
    expect(all.stdout.split('\n').slice(0, 3)).toEqual([
      'TEST  STATE     LOCATION  STATUS     SINCE                 LAST RESULT           REASON',
      'chat  alerting  eu-west   unhealthy  2025-11-21 07:55:00Z  2025-11-21 08:00:00Z  ws_open_failed: connection_refused',
      'chat  alerting  us-east   no_agent   2025-11-21 07:00:00Z                        no_agent',
    ]);
    const api = controlPlane();
    const one = await wsmon(api, 'status', 'chat', '--json');
    expect(JSON.parse(one.stdout)).toEqual(statusItem);
    expect(api.requests.map((r) => r.path)).toEqual(['/tests', `/tests/${TEST_ID}/status`]);
  });

  it('wsmon results: the test by name, since a duration ago', async () => {
    const api = controlPlane();
    const before = Date.now();
    const table = await wsmon(api, 'results', 'chat', '--since', '2h', '--location', 'eu-west');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('2025-11-21 08:00:00Z  eu-west   FAILED');
    expect(table.stdout).toContain('ws_open_failed: connection_refused');
    const request = api.requests.at(-1)!;
    expect(request.query.get('location')).toBe('eu-west');
    const from = Date.parse(request.query.get('from')!);
    expect(from).toBeGreaterThanOrEqual(before - 2 * 3_600_000);
    expect(from).toBeLessThanOrEqual(Date.now() - 2 * 3_600_000);
  });

  it('names a test it cannot find, and exits 1', async () => {
    const result = await wsmon(controlPlane(), 'results', 'nope');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('wsmon: no test is named "nope" (give its name or id)\n');
  });

  it('says which API answered 404 when the control plane lacks it', async () => {
    const api = new FakeControlPlane();
    const result = await wsmon(api, 'status');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('wsmon: Cannot GET /api/v1/status (HTTP 404 not_found)\n');
  });
});
