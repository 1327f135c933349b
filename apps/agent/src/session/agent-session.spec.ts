import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { getZooTlsMaterial } from '@wsmon/testing';
import { ResultBatch, type AgentResult, type TestAssignment } from '@wsmon/proto/agent';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigStore } from '../config/config-store';
import type { HeldTest } from '../config/test-assignment';
import type { ResultRecord } from '../results/result-record';
import { TestScheduler, type Clock } from '../scheduler';
import { ResultSpool } from '../spool/result-spool';
import {
  AGENT_CAPABILITIES,
  AgentSession,
  type AgentSessionOptions,
  type SessionEvent,
  type SessionHost,
} from './agent-session';
import type { ControlPlaneConnection } from './control-plane-channel';
import { assignment, ScriptedControlPlane, type ScriptedStream } from './scripted-control-plane.spec-helper';

const TOKEN = 'wsa_session_spec_0123456789abcdef';
const AGENT_ID = '0b7f3c1e-5d2a-4e8b-9c61-7a3f2d1e0c45';
const BACKOFF = { initialMs: 20, maxMs: 100, multiplier: 2, fatalMs: 60_000 };
const WAIT_MS = 10_000;

let dir: string;
let plane: ScriptedControlPlane;
const sessions: AgentSession[] = [];
const spools: ResultSpool<ResultRecord>[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wsmon-session-'));
  plane = await ScriptedControlPlane.start({ token: TOKEN });
});

afterEach(async () => {
  for (const session of sessions.splice(0)) await session.stop({ ackWaitMs: 0, closeWaitMs: 200 });
  await plane.close();
  for (const spool of spools.splice(0)) await spool.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A host that records what the session asks of it. */
function recordingHost(overrides: Partial<SessionHost> = {}) {
  const host = {
    applied: [] as string[][],
    runNows: [] as { runId: string; test: TestAssignment }[],
    settled: [] as number[],
    capacity: { inFlight: 0, freeSlots: 50 },
  };
  const methods: SessionHost = {
    runTests: (tests) => host.applied.push(tests.map((t) => `${t.id}@${t.revision}`)),
    capacity: () => host.capacity,
    runNow: (runId, test) => host.runNows.push({ runId, test }),
    settleRuns: (graceMs) => {
      host.settled.push(graceMs);
      return Promise.resolve();
    },
    ...overrides,
  };
  return { host, methods };
}

interface Harness {
  readonly session: AgentSession;
  readonly spool: ResultSpool<ResultRecord>;
  readonly store: ConfigStore;
  readonly events: SessionEvent[];
  readonly logs: string[];
  /** Resolves with the first event of `type` after the `from`-th one (default: from now on). */
  readonly event: <T extends SessionEvent['type']>(
    type: T,
    from?: number,
  ) => Promise<Extract<SessionEvent, { type: T }>>;
}

async function startSession(
  host: SessionHost,
  overrides: Partial<AgentSessionOptions> = {},
  connection: Partial<ControlPlaneConnection> = {},
): Promise<Harness> {
  const n = spools.length;
  const spool = await ResultSpool.open<ResultRecord>(join(dir, `spool-${n}`), {
    maxBytes: 4 * 1024 * 1024,
    syncIntervalMs: 0,
  });
  spools.push(spool);
  const store = new ConfigStore(join(dir, `config-${n}.enc`), TOKEN);
  const events: SessionEvent[] = [];
  const logs: string[] = [];
  const listeners = new Set<() => void>();
  const session = new AgentSession({
    connection: {
      controlPlane: plane.address,
      token: TOKEN,
      insecure: true,
      tls: { caPem: undefined, serverName: undefined, clientCertPem: undefined, clientKeyPem: undefined },
      ...connection,
    },
    identity: { agentId: AGENT_ID, hostname: 'spec-host', version: '0.1.0' },
    held: { revision: 0, drained: false, tests: new Map() },
    store,
    spool,
    host,
    log: (line) => logs.push(line),
    backoff: BACKOFF,
    random: () => 1,
    welcomeTimeoutMs: 5_000,
    onEvent: (event) => {
      events.push(event);
      for (const wake of [...listeners]) wake();
    },
    ...overrides,
  });
  sessions.push(session);
  session.start();
  const event = <T extends SessionEvent['type']>(type: T, from = events.length) =>
    new Promise<Extract<SessionEvent, { type: T }>>((resolve, reject) => {
      const check = () => {
        const found = events.slice(from).find((e) => e.type === type);
        if (found === undefined) return false;
        listeners.delete(wake);
        clearTimeout(timer);
        resolve(found as Extract<SessionEvent, { type: T }>);
        return true;
      };
      const wake = () => void check();
      const timer = setTimeout(() => {
        listeners.delete(wake);
        reject(new Error(`no ${type} event within ${WAIT_MS} ms; logs:\n${logs.join('\n')}`));
      }, WAIT_MS);
      if (!check()) listeners.add(wake);
    });
  return { session, spool, store, events, logs, event };
}

/** A spooled record of a run, with a result_json of about `jsonBytes`. */
function record(i: number, jsonBytes = 200): ResultRecord {
  return {
    result_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    test_id: 'test-1',
    test_revision: 1,
    slot_ms: 1_700_000_000_000 + i * 1000,
    started_ms: 1_700_000_000_004 + i * 1000,
    attempts: 1,
    success: true,
    value: 12.5,
    reason: '',
    cause: '',
    category: '',
    open_ms: 12.5,
    total_ms: 20,
    close_code: 1000,
    result_json: JSON.stringify({ success: true, padding: 'x'.repeat(jsonBytes) }),
  };
}

async function connected(stream: ScriptedStream, welcome: Parameters<ScriptedStream['welcome']>[0] = {}) {
  const hello = await stream.next('hello');
  stream.welcome(welcome);
  return hello;
}

/** The results of the stream's batches, until `count` arrived. */
async function resultsReceived(stream: ScriptedStream, count: number): Promise<AgentResult[]> {
  const results: AgentResult[] = [];
  while (results.length < count) results.push(...(await stream.next('result_batch')).results);
  return results;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe(AgentSession.name, () => {
  it('says hello, applies a snapshot as one at its EndOfSnapshot, acknowledges it and keeps it', async () => {
    const { host, methods } = recordingHost();
    const { store, logs, session } = await startSession(methods);
    const stream = await plane.nextStream();
    const hello = await connected(stream);

    expect(stream.metadata.get('authorization')).toEqual([`Bearer ${TOKEN}`]);
    expect(hello).toEqual({
      agent_id: AGENT_ID,
      hostname: 'spec-host',
      version: '0.1.0',
      capabilities: [...AGENT_CAPABILITIES],
      config_revision: 0,
      test_revisions: {},
    });
    stream.send({
      config_update: {
        revision: 5,
        snapshot: true,
        upserts: [assignment({ test_id: 'a' })],
        removed_test_ids: [],
      },
    });
    stream.send({
      config_update: {
        revision: 5,
        snapshot: true,
        upserts: [
          assignment({ test_id: 'b', revision: 2 }),
          assignment({ test_id: 'c', schedule: { cron: '*/5 * * * * *' } }),
        ],
        removed_test_ids: [],
      },
    });
    stream.send({ end_of_snapshot: { revision: 5 } });

    expect(await stream.next('config_ack')).toEqual({ revision: 5, rejected_tests: [] });
    expect(host.applied).toEqual([['a@1', 'b@2', 'c@1']]); // once, after the EndOfSnapshot
    expect(logs).toContain(`connected to ${plane.address} as ${AGENT_ID} (location eu-1)`);
    expect(logs).toContain('configured: 3 tests at revision 5');
    expect(session.status()).toMatchObject({
      connected: true,
      configured: true,
      configRevision: 5,
      heldTests: 3,
    });
    const kept = await store.load();
    expect(kept.kind === 'loaded' && kept.config.tests.map((t) => t.test_id)).toEqual(['a', 'b', 'c']);
    expect(kept.kind === 'loaded' && kept.config.revision).toBe(5);
  });

  it('applies deltas as they arrive, acknowledges each, and names what it holds in the next Hello', async () => {
    const { host, methods } = recordingHost();
    const { event } = await startSession(methods);
    const first = await plane.nextStream();
    await connected(first);
    first.snapshot(5, [assignment({ test_id: 'a' }), assignment({ test_id: 'b' })]);
    await first.next('config_ack');

    first.delta(7, [assignment({ test_id: 'c', revision: 3 })], ['a']);
    expect(await first.next('config_ack')).toEqual({ revision: 7, rejected_tests: [] });
    expect(host.applied.at(-1)).toEqual(['b@1', 'c@3']);

    // A new stream: the initial synchronisation is a delta against the Hello, acknowledged once.
    const disconnected = event('disconnected');
    first.end(grpc.status.UNAVAILABLE, 'restarting');
    expect(await disconnected).toMatchObject({
      cause: 'status',
      code: grpc.status.UNAVAILABLE,
      errorClass: 'transient',
    });
    const second = await plane.nextStream();
    const hello = await connected(second);
    expect(hello).toMatchObject({ config_revision: 7, test_revisions: { b: 1, c: 3 } });
    second.delta(9, [assignment({ test_id: 'd' })], ['b']);
    await until(() => host.applied.at(-1)?.join() === 'c@3,d@1', 'the delta to be applied on arrival');
    second.send({ end_of_snapshot: { revision: 10 } });
    expect(await second.next('config_ack')).toEqual({ revision: 10, rejected_tests: [] });
    expect(second.all('config_ack')).toHaveLength(1);
  });

  it('neither restarts nor re-phases a test applied again at the revision it holds', async () => {
    const clock = manualClock(Date.parse('2030-01-01T00:00:00Z'));
    const started: HeldTest[] = [];
    const scheduler = new TestScheduler<HeldTest>({
      maxConcurrent: 10,
      clock,
      run: (test) => {
        started.push(test);
        return Promise.resolve();
      },
    });
    const { methods } = recordingHost({ runTests: (tests) => scheduler.apply(tests) });
    await startSession(methods);
    const stream = await plane.nextStream();
    await connected(stream);
    stream.snapshot(1, [assignment({ test_id: 'a', revision: 4, name: 'first copy' })]);
    await stream.next('config_ack');
    const planned = scheduler.nextRun('a');
    expect(planned).toBeDefined();

    stream.delta(2, [assignment({ test_id: 'a', revision: 4, name: 'second copy' })]);
    await stream.next('config_ack');
    expect(scheduler.nextRun('a')).toEqual(planned);
    clock.advanceTo(planned!.runAtMs);
    expect(started.map((t) => t.name)).toEqual(['first copy']); // the test it already ran, untouched
    expect(scheduler.stats().started).toBe(1);
    await scheduler.stop({ deadlineMs: 0 });
  });

  it('rejects a test the shared schema refuses: listed in the ConfigAck without any value, not run, left out of the next Hello', async () => {
    const { host, methods } = recordingHost();
    const { logs, event } = await startSession(methods);
    const stream = await plane.nextStream();
    await connected(stream);
    const bad = assignment({
      test_id: 'bad',
      revision: 6,
      probe: {
        url: 'ws://127.0.0.1:9/',
        headers: { Authorization: 'Bearer resolved-secret-7f3a' },
        future_field: 'another-secret-value',
        assertions: [{ type: 'received_message', operator: 'matches', target: '(unclosed-secret-group' }],
      },
    });
    stream.snapshot(3, [assignment({ test_id: 'good' }), bad]);

    const ack = await stream.next('config_ack');
    expect(ack.revision).toBe(3);
    expect(ack.rejected_tests).toHaveLength(1);
    expect(ack.rejected_tests[0]).toMatchObject({ test_id: 'bad', test_revision: 6 });
    const message = ack.rejected_tests[0]!.message;
    expect(message).toContain('probe.future_field: is not a known field');
    expect(message).toContain('probe.assertions[0].target: is not a valid regular expression');
    for (const secret of ['resolved-secret-7f3a', 'another-secret-value', 'unclosed-secret-group']) {
      expect(message).not.toContain(secret);
      expect(logs.join('\n')).not.toContain(secret);
    }
    expect(host.applied).toEqual([['good@1']]);

    // An upsert that fixes it takes it off the list; a broken revision of a held test drops it.
    stream.delta(4, [
      assignment({ test_id: 'bad', revision: 7 }),
      assignment({ test_id: 'good', revision: 2, schedule: {} }),
    ]);
    const next = await stream.next('config_ack');
    expect(next.rejected_tests.map((r) => `${r.test_id}@${r.test_revision}: ${r.message}`)).toEqual([
      'good@2: schedule: must have exactly one of cron or interval_s',
    ]);
    expect(host.applied.at(-1)).toEqual(['bad@7']);

    const disconnected = event('disconnected');
    stream.end(grpc.status.UNAVAILABLE);
    await disconnected;
    const hello = await connected(await plane.nextStream());
    expect(hello.test_revisions).toEqual({ bad: 7 });
  });

  it('sends results in bounded batches, pipelined up to its window, and empties the spool as they are acknowledged', async () => {
    const { methods } = recordingHost();
    const { spool } = await startSession(methods, {
      resultLimits: { maxBatchResults: 10, maxBatchBytes: 3 * 1024 * 1024, maxUnackedResults: 20 },
    });
    for (let i = 1; i <= 25; i++) await spool.append(record(i));
    await spool.sync();
    const stream = await plane.nextStream();
    await connected(stream);

    const first = await stream.next('result_batch');
    const second = await stream.next('result_batch');
    expect(first.results.map((r) => r.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(second.results.map((r) => r.sequence)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(first.results[0]).toMatchObject({
      result_id: record(1).result_id,
      test_id: 'test-1',
      slot_time: new Date(record(1).slot_ms),
      success: true,
      value: 12.5,
      close_code: 1000,
    });
    expect(JSON.parse(Buffer.from(first.results[0]!.result_json).toString('utf8'))).toMatchObject({
      success: true,
    });
    // Twenty results unacknowledged: nothing more until an ack, though a heartbeat goes out meanwhile.
    await stream.next('heartbeat');
    expect(stream.all('result_batch')).toHaveLength(2);

    stream.send({ result_ack: { up_to_sequence: 10 } });
    expect((await stream.next('result_batch')).results.map((r) => r.sequence)).toEqual([21, 22, 23, 24, 25]);
    stream.send({ result_ack: { up_to_sequence: 25 } });
    await until(() => spool.stats().depth === 0, 'the spool to empty');
    expect(spool.stats()).toMatchObject({ acknowledgedSequence: 25, depth: 0 });
  });

  it('keeps every batch under its byte bound', async () => {
    const { methods } = recordingHost();
    const maxBatchBytes = 4096;
    const { spool } = await startSession(methods, {
      resultLimits: { maxBatchResults: 100, maxBatchBytes, maxUnackedResults: 100 },
    });
    for (let i = 1; i <= 12; i++) await spool.append(record(i, 1200));
    const stream = await plane.nextStream();
    await connected(stream);
    let sent = 0;
    while (sent < 12) {
      const batch = await stream.next('result_batch');
      expect(ResultBatch.encode(batch).finish().length).toBeLessThanOrEqual(maxBatchBytes);
      expect(batch.results.length).toBeGreaterThan(0);
      sent += batch.results.length;
    }
    expect(stream.all('result_batch').length).toBeGreaterThan(3);
  });

  it('sends the unacknowledged results again on a new stream, with the same ids and sequences', async () => {
    const { methods } = recordingHost();
    const { spool, event } = await startSession(methods);
    for (let i = 1; i <= 5; i++) await spool.append(record(i));
    await spool.sync();
    const first = await plane.nextStream();
    await connected(first);
    const sent = await resultsReceived(first, 5);
    first.send({ result_ack: { up_to_sequence: 2 } });
    await until(() => spool.stats().acknowledgedSequence === 2, 'the acknowledgement');
    const disconnected = event('disconnected');
    first.end(grpc.status.UNAVAILABLE);
    await disconnected;

    const second = await plane.nextStream();
    await connected(second);
    const resent = await resultsReceived(second, 3);
    expect(resent.map((r) => [r.sequence, r.result_id])).toEqual(
      sent.slice(2).map((r) => [r.sequence, r.result_id]),
    );
  });

  it('reports its capacity and spool in heartbeats', async () => {
    const { host, methods } = recordingHost();
    host.capacity = { inFlight: 3, freeSlots: 7 };
    const { spool } = await startSession(methods);
    await spool.append(record(1));
    await spool.append(record(2));
    const stream = await plane.nextStream();
    await connected(stream);
    const heartbeat = await stream.next('heartbeat');
    expect(heartbeat).toMatchObject({ free_slots: 7, in_flight: 3, spool_depth: 2, spool_dropped_total: 0 });
    expect(heartbeat.sent_time).toBeInstanceOf(Date);
  });

  it('cancels a stream silent for three heartbeat intervals and connects again', async () => {
    const { methods } = recordingHost();
    const { event } = await startSession(methods);
    const first = await plane.nextStream();
    await connected(first); // and then nothing more from the control plane
    const disconnected = await event('disconnected');
    expect(disconnected).toMatchObject({ cause: 'dead', errorClass: 'transient' });
    expect(disconnected.message).toContain('nothing received from the control plane for 3000 ms');
    await first.closed;
    expect(first.cancelled).toBe(true);
    await (await plane.nextStream()).next('hello');
  });

  it('hands RunNow to the host with its run id', async () => {
    const { host, methods } = recordingHost();
    const { logs } = await startSession(methods);
    const stream = await plane.nextStream();
    await connected(stream);
    const test = assignment({ test_id: 'paused', revision: 9 });
    stream.send({ run_now: { run_id: 'run-42', test } });
    await until(() => host.runNows.length === 1, 'the run');
    expect(host.runNows[0]).toEqual({ runId: 'run-42', test });
    expect(logs).toContain('run now: test paused (run run-42)');
  });

  it('drains: stops its tests, settles, sends its results, waits for their ack, then DrainDone and a half-close; runs nothing until synchronised again', async () => {
    const { host, methods } = recordingHost();
    const { spool, store, session, event } = await startSession(methods);
    const first = await plane.nextStream();
    await connected(first);
    first.snapshot(2, [assignment({ test_id: 'a' })]);
    await first.next('config_ack');
    await spool.append(record(1));
    await spool.append(record(2));
    const batch = await first.next('result_batch');

    first.send({ drain: { grace_period_ms: 1500, reason: 'agent drained by an operator' } });
    await until(() => host.settled.length === 1, 'the runs to settle');
    expect(host.settled).toEqual([1500]);
    expect(host.applied.at(-1)).toEqual([]);
    expect(session.status()).toMatchObject({ drained: true, configured: false });
    expect(first.all('drain_done')).toEqual([]); // results are not acknowledged yet
    first.send({ result_ack: { up_to_sequence: batch.results.at(-1)!.sequence } });
    await first.next('drain_done');
    await first.halfClosed;
    expect(first.received.at(-1)).toEqual({ drain_done: {} });
    const kept = await store.load();
    expect(kept.kind === 'loaded' && kept.config.drained).toBe(true);

    const disconnected = event('disconnected');
    first.end();
    expect(await disconnected).toMatchObject({ cause: 'status', code: grpc.status.OK });
    const second = await plane.nextStream();
    const hello = await connected(second);
    expect(hello.test_revisions).toEqual({ a: 1 });
    second.delta(3, [assignment({ test_id: 'b' })]);
    await until(() => session.status().heldTests === 2, 'the delta');
    expect(host.applied.at(-1)).toEqual([]); // still drained: the synchronisation has not ended
    second.send({ end_of_snapshot: { revision: 3 } });
    await second.next('config_ack');
    expect(host.applied.at(-1)).toEqual(['a@1', 'b@1']);
    expect(session.status()).toMatchObject({ drained: false, configured: true });
  });

  it('flushes its results at shutdown, waits for their ack, sends DrainDone and half-closes', async () => {
    const { methods } = recordingHost();
    const { spool, session } = await startSession(methods);
    const stream = await plane.nextStream();
    await connected(stream);
    await spool.append(record(1));
    const stopped = session.stop({ ackWaitMs: 5000, closeWaitMs: 5000 });
    const batch = await stream.next('result_batch');
    stream.send({ result_ack: { up_to_sequence: batch.results.at(-1)!.sequence } });
    await stream.next('drain_done');
    await stream.halfClosed;
    stream.end();
    await stopped;
    expect(spool.stats().depth).toBe(0);
  });

  it('half-closes without DrainDone at shutdown when drain is not in force', async () => {
    const { methods } = recordingHost();
    const { session } = await startSession(methods);
    const stream = await plane.nextStream();
    await connected(stream, { capabilities: ['config.delta'] });
    const stopped = session.stop({ ackWaitMs: 5000, closeWaitMs: 5000 });
    await stream.halfClosed;
    stream.end();
    await stopped;
    expect(stream.all('drain_done')).toEqual([]);
  });

  it('treats UNAUTHENTICATED as fatal: says so and retries slowly', async () => {
    const { methods } = recordingHost();
    const { event, logs } = await startSession(methods, {}, { token: 'wsa_wrong_token_0123456789' });
    const disconnected = await event('disconnected');
    expect(disconnected).toMatchObject({
      cause: 'status',
      code: grpc.status.UNAUTHENTICATED,
      errorClass: 'fatal',
      delayMs: BACKOFF.fatalMs,
    });
    expect(logs.at(-1)).toMatch(
      /refused this agent \(UNAUTHENTICATED: unknown agent token\): check WSMON_TOKEN; retrying in 60 s$/,
    );
  });

  it.each<[string, (stream: ScriptedStream) => void, string]>([
    ['a message before the Welcome', (s) => s.delta(1, []), 'config_update before the Welcome'],
    ['a second Welcome', (s) => (s.welcome(), s.welcome()), 'a second Welcome'],
    [
      'a heartbeat interval under a second',
      (s) => s.welcome({ heartbeat_interval_ms: 200 }),
      'Welcome.heartbeat_interval_ms is 200, under 1000',
    ],
    ['a message with no kind', (s) => (s.welcome(), s.send({})), 'a message with no kind set'],
    [
      'revisions going backwards',
      (s) => (s.welcome(), s.snapshot(5, []), s.delta(4, [])),
      'ConfigUpdate 4 after revision 5: revisions must increase',
    ],
    [
      'a snapshot removing tests',
      (s) => (
        s.welcome(),
        s.send({ config_update: { revision: 2, snapshot: true, upserts: [], removed_test_ids: ['x'] } })
      ),
      'snapshot ConfigUpdate 2 removes tests',
    ],
    [
      'a delta inside a snapshot',
      (s) => (
        s.welcome(),
        s.send({ config_update: { revision: 2, snapshot: true, upserts: [], removed_test_ids: [] } }),
        s.delta(3, [])
      ),
      'delta ConfigUpdate 3 inside the snapshot of revision 2',
    ],
    [
      'an initial delta without config.delta',
      (s) => (s.welcome({ capabilities: ['run.now'] }), s.delta(2, [])),
      'a delta ConfigUpdate for the initial synchronisation without config.delta',
    ],
    [
      'an EndOfSnapshot without a snapshot',
      (s) => (s.welcome(), s.snapshot(2, []), s.send({ end_of_snapshot: { revision: 3 } })),
      'EndOfSnapshot 3 without a snapshot',
    ],
    [
      'a ResultAck of results never recorded',
      (s) => (s.welcome(), s.send({ result_ack: { up_to_sequence: 99 } })),
      'ResultAck 99 beyond the last result recorded (0)',
    ],
    [
      'RunNow without run.now',
      (s) => (
        s.welcome({ capabilities: ['config.delta'] }),
        s.send({ run_now: { run_id: 'r', test: assignment() } })
      ),
      'RunNow while run.now is not in force',
    ],
    [
      'Drain without drain',
      (s) => (
        s.welcome({ capabilities: ['config.delta'] }),
        s.send({ drain: { grace_period_ms: 0, reason: '' } })
      ),
      'Drain while drain is not in force',
    ],
  ])(
    'cancels the stream on a protocol violation (%s), says why, and reconnects',
    async (_case, script, why) => {
      const { methods } = recordingHost();
      const { event } = await startSession(methods);
      const stream = await plane.nextStream();
      await stream.next('hello');
      const disconnected = event('disconnected');
      script(stream);
      const end = await disconnected;
      expect(end).toMatchObject({ cause: 'violation', errorClass: 'transient' });
      expect(end.message).toContain(`protocol violation by the control plane: ${why}`);
      await stream.closed;
      expect(stream.cancelled).toBe(true);
      await (await plane.nextStream()).next('hello');
    },
  );
});

describe('the channel to the control plane', () => {
  it('uses TLS by default, verifying the certificate against the CA under the server name given', async () => {
    const material = await getZooTlsMaterial();
    const tlsPlane = await ScriptedControlPlane.start({ token: TOKEN, tls: material.wrongHost });
    try {
      const { methods } = recordingHost();
      const tls = {
        caPem: material.ca.certPem,
        serverName: 'wrong-host.example',
        clientCertPem: undefined,
        clientKeyPem: undefined,
      };
      const secure = await startSession(
        methods,
        {},
        { controlPlane: tlsPlane.address, insecure: false, tls },
      );
      await (await tlsPlane.nextStream()).next('hello');
      await secure.session.stop({ ackWaitMs: 0, closeWaitMs: 100 });

      // Without the server name the certificate (for wrong-host.example only) does not verify.
      const unverified = await startSession(
        methods,
        {},
        { controlPlane: tlsPlane.address, insecure: false, tls: { ...tls, serverName: undefined } },
      );
      expect(await unverified.event('disconnected')).toMatchObject({ code: grpc.status.UNAVAILABLE });
      expect(tlsPlane.streams).toHaveLength(1);
    } finally {
      await tlsPlane.close();
    }
  });

  it('goes through the CONNECT proxy of HTTPS_PROXY, except for the hosts of NO_PROXY', async () => {
    const saved = { ...process.env };
    const proxy = await startConnectProxy();
    try {
      for (const name of [
        'grpc_proxy',
        'https_proxy',
        'http_proxy',
        'no_grpc_proxy',
        'no_proxy',
        'NO_PROXY',
      ]) {
        delete process.env[name];
      }
      process.env.HTTPS_PROXY = `http://127.0.0.1:${proxy.port}`;
      const { methods } = recordingHost();
      const proxied = await startSession(methods);
      await (await plane.nextStream()).next('hello');
      expect(proxy.targets).toEqual([plane.address]);
      await proxied.session.stop({ ackWaitMs: 0, closeWaitMs: 100 });

      process.env.NO_PROXY = 'localhost, 127.0.0.1';
      await startSession(methods);
      await (await plane.nextStream()).next('hello');
      expect(proxy.targets).toEqual([plane.address]);
    } finally {
      process.env = saved;
      await proxy.close();
    }
  });
});

/** A fake clock whose timers fire only when the test moves it. */
function manualClock(startMs: number) {
  let nowMs = startMs;
  const timers = new Set<{ atMs: number; callback: () => void }>();
  const clock: Clock & { advanceTo(ms: number): void } = {
    now: () => nowMs,
    setTimer: (callback, delayMs) => {
      const timer = { atMs: nowMs + delayMs, callback };
      timers.add(timer);
      return () => timers.delete(timer);
    },
    advanceTo: (ms) => {
      for (;;) {
        const due = [...timers].filter((t) => t.atMs <= ms).sort((a, b) => a.atMs - b.atMs)[0];
        if (due === undefined) break;
        timers.delete(due);
        nowMs = Math.max(nowMs, due.atMs);
        due.callback();
      }
      nowMs = ms;
    },
  };
  return clock;
}

/** An HTTP CONNECT proxy on 127.0.0.1 that records the targets it tunnels to. */
async function startConnectProxy(): Promise<{ port: number; targets: string[]; close(): Promise<void> }> {
  const targets: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    targets.push(target);
    const [host, port] = target.split(':');
    const upstream = netConnect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(client).add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    targets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
