import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOMParser } from '@xmldom/xmldom';
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

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'apps/cli/bin/wsmon.js');

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Tests as a person writes them, as YAML documents. */
const TESTS_YAML = `# tests as code
name: chat gateway
tags: [smoke]
schedule: { interval_s: 60 }
locations: [eu-west, us-east]
probe:
  url: wss://chat.example.com/socket
  headers: { Authorization: "Bearer {{ secrets.CHAT_TOKEN }}" }
  ping_mode: protocol
---
name: prices feed
schedule: { cron: "*/5 * * * *" }
locations: [eu-west]
retry: { attempts: 2 }
probe:
  url: ws://127.0.0.1:9/prices
  timeout_ms: 5000
`;

/**
 * The built `wsmon` CLI as a child process against the built control plane on PostgreSQL, with an editor
 * API key in WSMON_API_KEY: tests as code (apply, prune, export), on-demand runs answered by a scripted
 * agent (a failing run exits 1 and its JUnit report is valid), and the listing commands.
 */
describe('the wsmon CLI against a control plane', () => {
  let pg: TestPostgres;
  let cp: ControlPlaneProcess;
  let dir: string;
  let client: AgentServiceClient;
  let agent: ScriptedAgent;
  let editorKey: string;
  let answering = true;
  /** Test names whose on-demand runs the scripted agent answers with a failure. */
  const failing = new Set<string>();
  /** The scripted agent's result sequence: one counter for its run answers and the results sent here. */
  let sequence = 0;

  /** Sends results and waits for their acknowledgement, without taking messages the run loop awaits. */
  async function sendResults(results: ReturnType<typeof scheduledResult>[]): Promise<void> {
    agent.send({ result_batch: { results } });
    const last = results[results.length - 1]!.sequence;
    while (!agent.received.some((m) => (m.result_ack?.up_to_sequence ?? 0) >= last)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Runs the CLI in the scratch directory. Asynchronous: the scripted agent must keep answering meanwhile. */
  const wsmon = (...args: string[]) =>
    new Promise<CliRun>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', WSMON_SERVER: cp.httpUrl, WSMON_API_KEY: editorKey },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
      );
    });

  /** The scripted agent of eu-west answers every RunNow: a failure for the tests in `failing`. */
  async function answerRuns(): Promise<void> {
    while (answering) {
      const runNow = await agent.next('run_now', 3_600_000).catch(() => undefined);
      if (!runNow?.test) return;
      const bad = failing.has(runNow.test.name);
      agent.send({
        result_batch: {
          results: [
            {
              ...scheduledResult(runNow.test.test_id, ++sequence, new Date()),
              run_id: runNow.run_id,
              ...(bad
                ? {
                    success: false,
                    open_ms: undefined,
                    round_trip_ms: undefined,
                    reason: 'ws_open_failed',
                    cause: 'connection_refused',
                    category: 'network',
                  }
                : {}),
            },
          ],
        },
      });
    }
  }

  beforeAll(async () => {
    pg = await startTestPostgres();
    const adminKey = newAdminKey();
    cp = await startControlPlane({
      DATABASE_URL: await pg.createDatabase('cli'),
      WSMON_ADMIN_KEY: adminKey,
      WSMON_SECRET_KEY: newSecretKey(),
    });
    dir = await mkdtemp(join(tmpdir(), 'wsmon-cli-cp-e2e-'));
    const admin = restClient(cp.httpUrl, adminKey);
    for (const name of ['eu-west', 'us-east']) {
      expect((await admin('POST', '/locations', { name, region: `${name}-1` })).status).toBe(201);
    }
    expect((await admin('POST', '/secrets', { name: 'CHAT_TOKEN', value: 's3cr3t' })).status).toBe(201);
    editorKey = (await admin<{ key: string }>('POST', '/api-keys', { name: 'ci', role: 'editor' })).body.key;
    const token = await admin<{ secret: string }>('POST', '/locations/eu-west/tokens', {});
    client = agentClient(cp.grpcAddress);
    agent = openAgentStream(client, token.body.secret, { agent_id: `scripted-${randomUUID()}` });
    await agent.next('end_of_snapshot');
    void answerRuns();
  }, 120_000);

  afterAll(async () => {
    answering = false;
    agent?.cancel();
    client?.close();
    await cp?.stop();
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('tests as code', () => {
    it('applies a file, and a second apply of the same file changes nothing', async () => {
      await writeFile(join(dir, 'tests.yaml'), TESTS_YAML);
      const first = await wsmon('tests', 'apply', '-f', 'tests.yaml');
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toBe(
        '+ create "chat gateway"\n+ create "prices feed"\nApplied: 2 created, 0 updated, 0 deleted, 0 unchanged.\n',
      );
      const second = await wsmon('tests', 'apply', '-f', 'tests.yaml');
      expect(second.code).toBe(0);
      expect(second.stdout).toBe('No changes: 2 tests up to date.\n');
    });

    it('shows the changed fields of an update, and prunes what the file no longer has', async () => {
      const [chat] = TESTS_YAML.split('---\n');
      await writeFile(join(dir, 'chat.yaml'), chat!.replace('interval_s: 60', 'interval_s: 30'));
      const dry = await wsmon('tests', 'apply', '-f', 'chat.yaml', '--prune', '--dry-run');
      expect(dry.code).toBe(0);
      expect(dry.stdout).toBe(
        [
          '~ update "chat gateway"',
          '    schedule.interval_s: 60 → 30',
          '- delete "prices feed"',
          'Dry run: 0 to create, 1 to update, 1 to delete, 0 unchanged; nothing was changed.',
          '',
        ].join('\n'),
      );
      const applied = await wsmon('tests', 'apply', '-f', 'chat.yaml', '--prune');
      expect(applied.code).toBe(0);
      expect(applied.stdout).toContain('Applied: 0 created, 1 updated, 1 deleted, 0 unchanged.');
      expect((await wsmon('tests', 'apply', '-f', 'chat.yaml', '--prune')).stdout).toBe(
        'No changes: 1 test up to date.\n',
      );
    });

    it('exports the tests in a form whose apply is a no-op, secrets still as references', async () => {
      expect((await wsmon('tests', 'apply', '-f', 'tests.yaml')).code).toBe(0);
      for (const file of ['export.yaml', 'export.json']) {
        const exported = await wsmon('tests', 'export', '-o', file);
        expect(exported.code).toBe(0);
        expect(exported.stderr).toBe(`wrote 2 tests to ${file}\n`);
        const text = await readFile(join(dir, file), 'utf8');
        expect(text).toContain('{{ secrets.CHAT_TOKEN }}');
        expect(text).not.toContain('s3cr3t');
        const again = await wsmon('tests', 'apply', '-f', file, '--prune');
        expect(again.stdout).toBe('No changes: 2 tests up to date.\n');
      }
      const toStdout = await wsmon('tests', 'export');
      expect(toStdout.stdout).toBe(await readFile(join(dir, 'export.yaml'), 'utf8'));
    });

    it('refuses an invalid file with its document, line and field, before any request (exit 2)', async () => {
      await writeFile(join(dir, 'bad.yaml'), TESTS_YAML.replace('timeout_ms: 5000', 'timeout_ms: 99999'));
      const bad = await wsmon('tests', 'apply', '-f', 'bad.yaml');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toBe(
        'wsmon: bad.yaml: invalid tests file, nothing was applied:\n' +
          '  document 2 (line 17), test "prices feed": probe.timeout_ms: must be at most 30000 [max]\n',
      );
    });

    it("shows the API's refusal with its field errors (exit 1)", async () => {
      await writeFile(
        join(dir, 'secret.yaml'),
        TESTS_YAML.replace('name: chat gateway', 'name: other chat').replace('CHAT_TOKEN', 'MISSING'),
      );
      const refused = await wsmon('tests', 'apply', '-f', 'secret.yaml');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(
        'wsmon: cannot create "other chat" (document 1): invalid request (HTTP 400 invalid_argument)\n' +
          '  line 6: probe: references the secret MISSING, which does not exist [secret_exists]\n',
      );
    });
  });

  describe('tests run', () => {
    it('exits 0 when every location passes', async () => {
      const run = await wsmon('tests', 'run', '--id', 'prices feed', '--wait', '--timeout', '60s');
      expect(run.stderr).toBe('passed  prices feed @ eu-west  6.30 ms\n');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(
        /^TEST +LOCATION +RESULT +TIME +REASON\nprices feed +eu-west +passed +6\.30 ms\n/,
      );
    });

    it('exits 1 for a failing test and a location without an agent, and writes a valid JUnit report', async () => {
      failing.add('chat gateway');
      const run = await wsmon('tests', 'run', '--tag', 'smoke', '--wait', '--junit', 'reports/junit.xml');
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(
        /chat gateway +eu-west +FAILED +6\.30 ms +ws_open_failed: connection_refused\n/,
      );
      expect(run.stdout).toMatch(/chat gateway +us-east +NO AGENT/);
      expect(run.stdout).toContain('2 runs: 0 passed, 1 failed, 1 without an agent, 0 timed out');
    });

    it('wrote JUnit XML that an XML parser reads: one testcase per test and location', async () => {
      // Its directory did not exist: it was made.
      const xml = await readFile(join(dir, 'reports/junit.xml'), 'utf8');
      const doc = new DOMParser({
        onError: (level, message) => {
          throw new Error(`${level}: ${message}`);
        },
      }).parseFromString(xml, 'text/xml');
      const cases = Array.from(doc.getElementsByTagName('testcase')).map((c) => [
        c.getAttribute('classname'),
        c.getAttribute('name'),
        c.getElementsByTagName('failure').length,
        c.getElementsByTagName('error').length,
      ]);
      expect(cases).toEqual([
        ['chat gateway', 'eu-west', 1, 0],
        ['chat gateway', 'us-east', 0, 1],
      ]);
    });
  });

  describe('listings', () => {
    it('wsmon agents and wsmon locations: tables and JSON', async () => {
      const agents = await wsmon('agents');
      expect(agents.code).toBe(0);
      expect(agents.stdout.split('\n')[0]).toMatch(/^ID +LOCATION +STATUS +VERSION +HOSTNAME +TESTS/);
      expect(agents.stdout).toMatch(
        new RegExp(`${agent.agentId} +eu-west +connected +0\\.0\\.0-test +scripted`),
      );
      const json = JSON.parse((await wsmon('agents', '--location', 'eu-west', '--json')).stdout);
      expect(json.map((a: any) => a.id)).toEqual([agent.agentId]);
      expect((await wsmon('agents', '--location', 'us-east')).stdout).toBe('No agents in us-east.\n');

      const locations = await wsmon('locations');
      expect(locations.stdout).toMatch(/^NAME +KIND +REGION +AGENTS +LABELS\n/);
      expect(locations.stdout).toMatch(/\neu-west +private +eu-west-1 +1\/1\n/);
      expect(locations.stdout).toMatch(/\nus-east +private +us-east-1 +0\/0\n/);
      const locationsJson = JSON.parse((await wsmon('locations', '--json')).stdout);
      expect(locationsJson.map((l: any) => [l.name, l.agents.connected])).toEqual([
        ['eu-west', 1],
        ['us-east', 0],
      ]);
    });

    it("wsmon results: a test's results by name, as a table and as JSON", async () => {
      const tests = await restClient(cp.httpUrl, editorKey)<any>('GET', '/tests?q=prices');
      const testId = tests.body.items[0].id;
      const slot = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
      await sendResults([scheduledResult(testId, ++sequence, slot)]);
      const table = await wsmon('results', 'prices feed', '--since', '1h');
      expect(table.code).toBe(0);
      expect(table.stdout.split('\n')[0]).toMatch(
        /^SLOT +LOCATION +RESULT +OPEN +ROUND TRIP +TOTAL +CLOSE +REASON$/,
      );
      expect(table.stdout).toContain(`${slot.toISOString().slice(0, 19).replace('T', ' ')}Z  eu-west   ok`);
      const json = JSON.parse((await wsmon('results', testId, '--json')).stdout);
      expect(json).toMatchObject([{ test_id: testId, location: 'eu-west', success: true, total_ms: 6.3 }]);
      const none = await wsmon('results', 'prices feed', '--location', 'us-east');
      expect(none.stdout).toBe('No results of "prices feed" in the last 1h.\n');
    });

    it('wsmon status: every test with each location, and one test', async () => {
      const all = await wsmon('status');
      expect(all.stderr).toBe('');
      expect(all.code).toBe(0);
      expect(all.stdout.split('\n')[0]).toMatch(
        /^TEST +STATE +LOCATION +STATUS +SINCE +LAST RESULT +REASON$/,
      );
      expect(all.stdout).toMatch(/\nchat gateway +(ok|failing|alerting|no_data) +us-east +no_agent /);
      const one = JSON.parse((await wsmon('status', 'chat gateway', '--json')).stdout);
      expect(one).toMatchObject({
        test_name: 'chat gateway',
        state: expect.stringMatching(/^(ok|failing|alerting|no_data)$/),
      });
      expect(one.locations.map((l: any) => l.location).sort()).toEqual(['eu-west', 'us-east']);
    });
  });
});
