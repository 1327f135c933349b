import { describe, expect, it } from 'vitest';
import { FakeControlPlane, runCli } from './fixtures/fake-control-plane';
import { createTestsCommand } from './tests.command';

const TEST_A = '11111111-1111-4111-8111-111111111111';
const TEST_B = '22222222-2222-4222-8222-222222222222';

const serverTest = (id: string, name: string, extra: Record<string, unknown> = {}) => ({
  id,
  name,
  description: '',
  tags: [] as string[],
  enabled: true,
  probe: {
    url: 'wss://a.example.com/ws',
    timeout_ms: 10_000,
    interpretation: 'handshake_latency',
    ping_mode: 'none',
    protocols: [],
    headers: {},
    ip_version: 'any',
    assertions: [],
  },
  schedule: { interval_s: 60 },
  locations: ['eu-west', 'us-east'],
  retry: { attempts: 0, delay_ms: 1000 },
  alert: { min_failing_locations: 1, for_minutes: 5 },
  revision: 1,
  created_at: '2025-11-21T08:00:00.000Z',
  updated_at: '2025-11-21T08:00:00.000Z',
  ...extra,
});

const page = (items: unknown[]) => ({ body: { items, next_page_token: null } });

const location = (name: string, status: string, result: Record<string, unknown> | null = null) => ({
  location: name,
  location_id: `loc-${name}`,
  status,
  agent_id: status === 'no_agent' ? null : 'agent-1',
  result,
});

const passed = {
  result_id: 'res-1',
  success: true,
  total_ms: 12.5,
  reason: null,
  cause: null,
  category: null,
};
const failed = {
  result_id: 'res-2',
  success: false,
  total_ms: 3.2,
  reason: 'ws_open_failed',
  cause: 'connection_refused',
  category: 'network',
};

/** A control plane with two tests; each run finishes at the second poll. */
function withRuns(finalB: ReturnType<typeof location>[]) {
  const api = new FakeControlPlane()
    .on('GET', /^\/tests$/, (r) => {
      const all = [serverTest(TEST_A, 'chat'), serverTest(TEST_B, 'feed', { tags: ['smoke'] })];
      const tag = r.query.get('tag');
      return page(tag === null ? all : all.filter((t) => t.tags.includes(tag)));
    })
    .on('POST', /^\/tests\/([^/]+)\/runs$/, (_r, m) => ({
      status: 202,
      body: {
        id: `run-${m[1]}`,
        test_id: m[1],
        done: false,
        locations: [location('eu-west', 'pending'), location('us-east', 'pending')],
      },
    }));
  const polls = new Map<string, number>();
  api.on('GET', /^\/runs\/run-(.+)$/, (_r, m) => {
    const n = (polls.get(m[1]!) ?? 0) + 1;
    polls.set(m[1]!, n);
    if (n < 2) {
      return {
        body: {
          id: `run-${m[1]}`,
          test_id: m[1],
          done: false,
          locations: [location('eu-west', 'dispatched'), location('us-east', 'dispatched')],
        },
      };
    }
    const locations =
      m[1] === TEST_A
        ? [location('eu-west', 'completed', passed), location('us-east', 'completed', passed)]
        : finalB;
    return { body: { id: `run-${m[1]}`, test_id: m[1], done: true, locations } };
  });
  return api;
}

const run = (api: FakeControlPlane, argv: string[], tty = false) =>
  runCli([createTestsCommand], ['tests', 'run', ...argv], { api, tty });

describe('wsmon tests run', () => {
  it('exits 0 when every location of every test passed, with the key as a bearer token', async () => {
    const api = withRuns([
      location('eu-west', 'completed', passed),
      location('us-east', 'completed', passed),
    ]);
    const result = await run(api, ['--wait']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('4 runs: 4 passed, 0 failed, 0 without an agent, 0 timed out');
    expect(api.requests.every((r) => r.authorization === 'Bearer wsk_test_key')).toBe(true);
    expect(api.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual([
      `/tests/${TEST_A}/runs`,
      `/tests/${TEST_B}/runs`,
    ]);
  });

  it('exits 1 for a failure or a location without an agent, and writes them to the JUnit report', async () => {
    const api = withRuns([location('eu-west', 'completed', failed), location('us-east', 'no_agent')]);
    const result = await run(api, ['--junit', 'out/wsmon.xml']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/feed\s+eu-west\s+FAILED\s+3\.20 ms\s+ws_open_failed: connection_refused/);
    expect(result.stdout).toMatch(/feed\s+us-east\s+NO AGENT/);
    const junit = result.files.get('out/wsmon.xml') ?? '';
    expect(junit).toContain('<failure message="ws_open_failed: connection_refused"');
    expect(junit).toContain('type="no_agent"');
  });

  it('shows a line per finished location when standard error is not a terminal', async () => {
    const api = withRuns([
      location('eu-west', 'completed', failed),
      location('us-east', 'completed', passed),
    ]);
    const result = await run(api, ['--wait', '--tag', 'smoke']);
    expect(result.stderr.split('\n').filter(Boolean)).toEqual([
      'FAILED  feed @ eu-west  3.20 ms  ws_open_failed: connection_refused',
      'passed  feed @ us-east  12.5 ms',
    ]);
    expect(api.requests.find((r) => r.path === '/tests')?.query.get('tag')).toBe('smoke');
  });

  it('keeps one live progress line on a terminal', async () => {
    const api = withRuns([
      location('eu-west', 'completed', passed),
      location('us-east', 'completed', passed),
    ]);
    const result = await run(api, ['--wait', '--id', 'feed'], true);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('\n');
    expect(result.stderr).toContain('\r\x1b[Krunning 1 test: 2/2 locations done, 0 not passed');
    expect(result.stderr.endsWith('\r\x1b[K')).toBe(true);
  });

  it('prints the outcome as JSON', async () => {
    const api = withRuns([
      location('eu-west', 'completed', passed),
      location('us-east', 'completed', failed),
    ]);
    const result = await run(api, ['--wait', '--json', '--id', TEST_B]);
    const parsed = JSON.parse(result.stdout) as {
      passed: boolean;
      cases: { location: string; outcome: string }[];
    };
    expect(parsed.passed).toBe(false);
    expect(parsed.cases.map((c) => `${c.location} ${c.outcome}`)).toEqual([
      'eu-west passed',
      'us-east failed',
    ]);
  });

  it.each([
    [['--id', 'chat', '--tag', 'smoke'], 'give --id or --tag, not both'],
    [['--id', 'nope'], '--id: no test has the id or name "nope"'],
    [['--timeout', 'soon', '--wait'], '--timeout: "soon" is not a duration'],
  ])('exits 2 for bad usage: %j', async (argv, message) => {
    const api = withRuns([]);
    const result = await run(api, argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(api.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });

  it('exits 2 without an API key, before any request', async () => {
    const api = withRuns([]);
    const result = await runCli([createTestsCommand], ['tests', 'run'], { api, env: { WSMON_API_KEY: '' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no API key: set WSMON_API_KEY');
    expect(api.requests).toEqual([]);
  });
});

describe('wsmon tests apply', () => {
  const file = [
    'name: chat',
    'schedule: { interval_s: 60 }',
    'locations: [eu-west, us-east]',
    'probe:',
    '  url: wss://a.example.com/ws',
    '  timeout_ms: 5000',
    '---',
    'name: new one',
    'schedule: { interval_s: 30 }',
    'locations: [eu-west]',
    'probe: { url: "ws://b.example.com" }',
  ].join('\n');

  function controlPlane(createAnswer: (body: unknown) => { status: number; body: unknown }) {
    return new FakeControlPlane()
      .on('GET', /^\/tests$/, page([serverTest(TEST_A, 'chat'), serverTest(TEST_B, 'old')]))
      .on('GET', /^\/locations$/, page([{ name: 'eu-west' }, { name: 'us-east' }]))
      .on('POST', /^\/tests$/, (r) => createAnswer(r.body))
      .on('PUT', /^\/tests\/(.+)$/, (r) => ({ body: r.body }))
      .on('DELETE', /^\/tests\/(.+)$/, { status: 204 });
  }

  it('shows the diff and sends creates, updates and, with --prune, deletes', async () => {
    const api = controlPlane((body) => ({ status: 201, body }));
    const result = await runCli([createTestsCommand], ['tests', 'apply', '-f', 't.yaml', '--prune'], {
      api,
      files: { 't.yaml': file },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        '+ create "new one"',
        '~ update "chat"',
        '    probe.timeout_ms: 10000 → 5000',
        '- delete "old"',
        'Applied: 1 created, 1 updated, 1 deleted, 0 unchanged.',
        '',
      ].join('\n'),
    );
    expect(api.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /tests',
      `PUT /tests/${TEST_A}`,
      `DELETE /tests/${TEST_B}`,
    ]);
  });

  it('changes nothing with --dry-run', async () => {
    const api = controlPlane((body) => ({ status: 201, body }));
    const result = await runCli([createTestsCommand], ['tests', 'apply', '-f', 't.yaml', '--dry-run'], {
      api,
      files: { 't.yaml': file },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      'Dry run: 1 to create, 1 to update, 0 to delete, 0 unchanged; nothing was changed.',
    );
    expect(result.stdout).toContain(
      '1 test on the control plane is not in the file (kept; --prune deletes them): "old"',
    );
    expect(api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it("shows the API's field errors, pointed at the file's lines, and exits 1", async () => {
    const api = controlPlane(() => ({
      status: 400,
      body: {
        error: {
          status: 400,
          code: 'invalid_argument',
          message: 'invalid request: probe: references the secret X, which does not exist',
          field_errors: [
            {
              path: 'probe',
              rule: 'secret_exists',
              message: 'probe: references the secret X, which does not exist',
            },
          ],
        },
      },
    }));
    const result = await runCli([createTestsCommand], ['tests', 'apply', '-f', 't.yaml'], {
      api,
      files: { 't.yaml': file },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      [
        'wsmon: cannot create "new one" (document 2): invalid request (HTTP 400 invalid_argument)',
        '  line 11: probe: references the secret X, which does not exist [secret_exists]',
        '',
      ].join('\n'),
    );
    expect(api.requests.filter((r) => r.method === 'PUT')).toEqual([]);
  });

  it('refuses a file naming a location the control plane lacks, before changing anything', async () => {
    const api = controlPlane((body) => ({ status: 201, body }));
    const result = await runCli([createTestsCommand], ['tests', 'apply', '-f', 't.yaml'], {
      api,
      files: { 't.yaml': file.replace('[eu-west]', '[eu-west, mars]') },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'document 2 (line 10): locations[1]: no location is named "mars" [exists]',
    );
    expect(api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('exits 2 for an invalid file without a single request', async () => {
    const api = controlPlane((body) => ({ status: 201, body }));
    const result = await runCli([createTestsCommand], ['tests', 'apply', '-f', 't.yaml'], {
      api,
      files: { 't.yaml': 'name: x\nschedule: { interval_s: 60 }\nlocations: []\nprobe: { url: "ws://a" }\n' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'document 1 (line 3), test "x": locations: must have at least 1 items [min_items]',
    );
    expect(api.requests).toEqual([]);
  });
});

describe('wsmon tests export', () => {
  it('writes the tests by name, without defaults, to a file in the format its name says', async () => {
    const api = new FakeControlPlane().on(
      'GET',
      /^\/tests$/,
      page([serverTest(TEST_B, 'zeta'), serverTest(TEST_A, 'alpha', { tags: ['prod'] })]),
    );
    const yaml = await runCli([createTestsCommand], ['tests', 'export', '-o', 'tests.yaml'], { api });
    expect(yaml.code).toBe(0);
    expect(yaml.stderr).toBe('wrote 2 tests to tests.yaml\n');
    expect(yaml.files.get('tests.yaml')).toBe(
      [
        '# wsmon tests: apply with `wsmon tests apply -f FILE`',
        '---',
        'name: alpha',
        'tags:',
        '  - prod',
        'schedule:',
        '  interval_s: 60',
        'locations:',
        '  - eu-west',
        '  - us-east',
        'probe:',
        '  url: wss://a.example.com/ws',
        '---',
        'name: zeta',
        'schedule:',
        '  interval_s: 60',
        'locations:',
        '  - eu-west',
        '  - us-east',
        'probe:',
        '  url: wss://a.example.com/ws',
        '',
      ].join('\n'),
    );
    const json = await runCli([createTestsCommand], ['tests', 'export', '-o', 'tests.json'], { api });
    expect((JSON.parse(json.files.get('tests.json')!) as { name: string }[]).map((t) => t.name)).toEqual([
      'alpha',
      'zeta',
    ]);
  });
});
