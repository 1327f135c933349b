import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addHealthAndReflection,
  type AgentResult,
  AgentServiceClient,
  AgentServiceService,
  type AgentServiceServer,
  ConnectRequest,
  ConnectResponse,
  protoFiles,
  type TestAssignment,
} from './index';

const AGENT_SERVICE = AgentServiceClient.serviceName;
const TOKEN = 'wsmon_at_0123456789abcdef';
/** Bounds every stream of the suite: a protocol that hangs fails with DEADLINE_EXCEEDED, not a timeout. */
const STREAM_MS = 5_000;
const CONTROL_PLANE_CAPABILITIES = ['config.delta', 'run.now', 'drain'];
const REVISION = 42;

/** A probe configuration as the control plane sends it: validated, defaults applied, secret resolved. */
function probeConfig() {
  return {
    url: 'wss://feed.example.com/v2/stream?region=eu',
    timeout_ms: 5000,
    interpretation: 'round_trip_latency',
    ping_mode: 'none',
    protocols: ['feed.v2'],
    headers: { Authorization: 'Bearer s3cr3t-resolved', 'X-Tenant': 'acme' },
    origin: 'https://app.example.com',
    ip_version: 'any',
    tls: { skip_verify: false },
    assertions: [
      { type: 'response_time', operator: 'less_than', property: 'connect', target: 500 },
      { type: 'certificate_days_remaining', operator: 'greater_than', target: 14 },
    ],
    steps: [
      { type: 'connect' },
      { type: 'send', message: '{"op":"subscribe","channel":"prices"}' },
      {
        type: 'receive',
        expect_message: 'subscribed',
        skip_non_matching: false,
        assertions: [{ type: 'received_message', operator: 'contains', target: '"ok":true' }],
      },
      { type: 'hold', duration_ms: 2000, min_messages: 3, min_pongs: 0 },
      { type: 'disconnect', initiator: 'client', code: 1000 },
    ],
  };
}

function testAssignment(overrides: Partial<TestAssignment> = {}): TestAssignment {
  return {
    test_id: '6f1c2a64-8d7e-4a51-9a43-5b0f2a3c9e10',
    revision: 40,
    name: 'price feed',
    probe: probeConfig(),
    schedule: { cron: '*/30 * * * * *' },
    retry: { attempts: 2, delay_ms: 500 },
    ...overrides,
  };
}

/** A ProbeResult document (libs/contracts) as the agent encodes it into `result_json`. */
function probeResultJson(success: boolean): Buffer {
  const document = {
    success,
    interpretation: 'round_trip_latency',
    value: success ? 41.5 : null,
    failure: success
      ? null
      : {
          reason: 'ws_open_failed',
          cause: 'connection_refused',
          category: 'CONNRESET',
          message: 'connection refused by 127.0.0.1:9',
          error_code: 'ECONNREFUSED',
        },
    started_at: '2026-03-01T12:00:00.004Z',
    url: 'wss://feed.example.com/v2/stream?region=eu',
    timings: {
      dns_ms: 1.2,
      tcp_connect_ms: success ? 3.4 : null,
      tls_handshake_ms: success ? 12.5 : null,
      upgrade_ms: success ? 8.1 : null,
      open_ms: success ? 25.2 : null,
      round_trip_ms: success ? 41.5 : null,
      ping_ms: null,
      close_ms: success ? 0.9 : null,
      total_ms: success ? 2071.3 : 4.6,
    },
    // Non-ASCII on purpose: the bytes must arrive exactly as UTF-8.
    last_message: success
      ? { data: '{"ok":true,"msg":"abonné ✓ 価格"}', binary: false, size_bytes: 38, truncated: false }
      : null,
    steps: [],
    assertions: [],
  };
  return Buffer.from(JSON.stringify(document), 'utf8');
}

/** A scheduled run that succeeded: every optional summary field present. */
function succeededResult(sequence: number): AgentResult {
  return {
    result_id: 'a3e1c8a0-1d4b-4c55-8f43-1b7e5f0d2c01',
    sequence,
    test_id: testAssignment().test_id,
    test_revision: 40,
    slot_time: new Date('2026-03-01T12:00:00.000Z'),
    started_time: new Date('2026-03-01T12:00:00.004Z'),
    attempts: 1,
    success: true,
    value: 41.5,
    reason: '',
    cause: '',
    category: '',
    open_ms: 25.2,
    round_trip_ms: 41.5,
    total_ms: 2071.3,
    close_code: 1000,
    tls_not_after: new Date('2026-05-30T23:59:59.000Z'),
    result_json: probeResultJson(true),
  };
}

/** A scheduled run that failed before the socket opened: every optional summary field absent. */
function failedResult(sequence: number): AgentResult {
  return {
    result_id: 'b7d2e9f1-5c3a-4e8b-9d10-2c6f7a8b9e02',
    sequence,
    test_id: testAssignment().test_id,
    test_revision: 40,
    slot_time: new Date('2026-03-01T12:00:30.000Z'),
    started_time: new Date('2026-03-01T12:00:30.003Z'),
    attempts: 3,
    success: false,
    reason: 'ws_open_failed',
    cause: 'connection_refused',
    category: 'CONNRESET',
    total_ms: 4.6,
    result_json: probeResultJson(false),
  };
}

interface StreamLog {
  readonly received: ConnectRequest[];
  readonly sent: ConnectResponse[];
}

/**
 * Just enough of a control plane to prove the contract over a real socket: checks the token, answers
 * the Hello with a Welcome and a one-test snapshot, answers a ConfigAck with a RunNow, acknowledges
 * results (and asks for a drain once the on-demand result is in), answers heartbeats, and ends the
 * call when the agent has drained.
 */
function fakeControlPlane(logs: StreamLog[]): AgentServiceServer {
  return {
    connect: (call) => {
      const log: StreamLog = { received: [], sent: [] };
      logs.push(log);
      let open = true;
      const send = (message: ConnectResponse) => {
        log.sent.push(message);
        call.write(message);
      };
      const fail = (code: grpc.status, details: string) => {
        open = false;
        call.emit('error', { code, details });
      };
      // Checked when the call starts, before anything is read: a bad token gets no configuration.
      if (call.metadata.get('authorization')[0] !== `Bearer ${TOKEN}`) {
        fail(grpc.status.UNAUTHENTICATED, 'the agent token is missing, unknown or revoked');
        return;
      }
      let greeted = false;
      call.on('data', (message: ConnectRequest) => {
        if (!open) return;
        log.received.push(message);
        if (message.hello) {
          if (greeted) return fail(grpc.status.FAILED_PRECONDITION, 'a second hello');
          greeted = true;
          const capabilities = message.hello.capabilities.filter((c) =>
            CONTROL_PLANE_CAPABILITIES.includes(c),
          );
          send({
            welcome: {
              session_id: 'c9a4f3d2-0b1e-4f6a-8c7d-3e2f1a0b9c08',
              capabilities,
              heartbeat_interval_ms: 15_000,
              server_time: new Date('2026-03-01T11:59:58.250Z'),
              location: 'eu-west',
            },
          });
          send({
            config_update: {
              revision: REVISION,
              snapshot: true,
              upserts: [testAssignment()],
              removed_test_ids: [],
            },
          });
          send({ end_of_snapshot: { revision: REVISION } });
        } else if (!greeted) {
          fail(grpc.status.FAILED_PRECONDITION, 'the first message of a stream must be a hello');
        } else if (message.config_ack) {
          send({ run_now: { run_id: 'run-7', test: testAssignment() } });
        } else if (message.result_batch) {
          const results = message.result_batch.results;
          send({ result_ack: { up_to_sequence: Math.max(...results.map((r) => r.sequence)) } });
          if (results.some((r) => r.run_id !== undefined)) {
            send({ drain: { grace_period_ms: 10_000, reason: 'agent drained by an operator' } });
          }
        } else if (message.heartbeat) {
          send({ heartbeat: { server_time: new Date('2026-03-01T12:00:15.000Z') } });
        } else if (message.drain_done) {
          open = false;
          call.end();
        } else {
          fail(grpc.status.INVALID_ARGUMENT, 'a message with no kind set');
        }
      });
      call.on('end', () => {
        if (open) call.end();
        open = false;
      });
    },
  };
}

/** The agent's end of one stream: what it sent, what arrived, and how the call ended. */
class AgentEnd {
  readonly sent: ConnectRequest[] = [];
  readonly received: ConnectResponse[] = [];
  readonly ended: Promise<grpc.StatusObject>;
  private status: grpc.StatusObject | undefined;
  private cursor = 0;
  private wake: () => void = () => undefined;

  constructor(private readonly call: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse>) {
    call.on('data', (message: ConnectResponse) => {
      this.received.push(message);
      this.wake();
    });
    // A failed call also emits its status, once, as every call does: that is what the spec reads.
    call.on('error', () => undefined);
    this.ended = new Promise((resolve) => {
      call.on('status', (status: grpc.StatusObject) => {
        this.status = status;
        resolve(status);
        this.wake();
      });
    });
  }

  send(message: ConnectRequest): void {
    this.sent.push(message);
    this.call.write(message);
  }

  /** Half-closes the agent's side. */
  close(): void {
    this.call.end();
  }

  /** The next `count` messages of the control plane, once they have all arrived. */
  async next(count: number): Promise<ConnectResponse[]> {
    while (this.received.length < this.cursor + count) {
      if (this.status) {
        throw new Error(
          `stream ended with ${this.status.code} (${this.status.details}) after ${this.received.length} messages`,
        );
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    this.cursor += count;
    return this.received.slice(this.cursor - count, this.cursor);
  }
}

describe(AGENT_SERVICE, { timeout: 10_000 }, () => {
  const logs: StreamLog[] = [];
  let server: grpc.Server;
  let client: AgentServiceClient;

  const connect = (token?: string) => {
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    return new AgentEnd(client.connect(metadata, { deadline: Date.now() + STREAM_MS }));
  };

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(AgentServiceService, fakeControlPlane(logs));
    // Throws unless the runtime contract (protoFiles().all, loaded by proto-loader) defines the service.
    addHealthAndReflection(server, [AGENT_SERVICE]);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    client = new AgentServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    server?.forceShutdown();
  });

  it('ships agent.proto with the contract', () => {
    expect(protoFiles().all).toEqual(
      expect.arrayContaining(['wsmon/v1/agent.proto', 'wsmon/v1/config.proto']),
    );
  });

  it('carries a whole session over a real stream: every message arrives as sent', async () => {
    const streams = logs.length;
    const agent = connect(TOKEN);

    agent.send({
      hello: {
        agent_id: '0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f50',
        hostname: 'probe-eu-1',
        version: '1.4.0',
        // `future.thing` is unknown to this control plane: ignored, not an error.
        capabilities: ['config.delta', 'run.now', 'drain', 'future.thing'],
        config_revision: 38,
        test_revisions: { [testAssignment().test_id]: 38, 'c0ffee00-0000-4000-8000-000000000001': 12 },
      },
    });
    const [welcome, snapshot, endOfSnapshot] = await agent.next(3);
    expect(welcome?.welcome?.capabilities).toEqual(CONTROL_PLANE_CAPABILITIES);
    expect(snapshot?.config_update).toEqual({
      revision: REVISION,
      snapshot: true,
      upserts: [testAssignment()],
      removed_test_ids: [],
    });
    // The probe configuration, secret included, survives the Struct encoding value for value.
    expect(snapshot?.config_update?.upserts[0]?.probe).toStrictEqual(probeConfig());
    expect(endOfSnapshot).toEqual({ end_of_snapshot: { revision: REVISION } });

    agent.send({
      config_ack: {
        revision: REVISION,
        rejected_tests: [
          {
            test_id: 'c0ffee00-0000-4000-8000-000000000002',
            test_revision: 41,
            message: 'probe.steps[0].type: unknown step',
          },
        ],
      },
    });
    const [runNow] = await agent.next(1);
    expect(runNow?.run_now).toEqual({ run_id: 'run-7', test: testAssignment() });

    agent.send({
      heartbeat: {
        sent_time: new Date('2026-03-01T12:00:15.001Z'),
        free_slots: 0,
        in_flight: 64,
        spool_depth: 3,
        spool_dropped_total: 9_007_199_254_740_991,
      },
    });
    const [heartbeat] = await agent.next(1);
    expect(heartbeat?.heartbeat?.server_time).toEqual(new Date('2026-03-01T12:00:15.000Z'));

    const onDemand: AgentResult = {
      ...failedResult(103),
      result_id: 'e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a703',
      run_id: 'run-7',
      // A connection-success test that failed: 0 is a value, not an absent one.
      value: 0,
      slot_time: new Date('2026-03-01T12:00:15.100Z'),
      attempts: 1,
    };
    agent.send({ result_batch: { results: [succeededResult(101), failedResult(102), onDemand] } });
    const [ack, drain] = await agent.next(2);
    expect(ack).toEqual({ result_ack: { up_to_sequence: 103 } });
    expect(drain?.drain).toEqual({ grace_period_ms: 10_000, reason: 'agent drained by an operator' });

    agent.send({ drain_done: {} });
    agent.close();
    expect(await agent.ended).toMatchObject({ code: grpc.status.OK });

    const log = logs[streams];
    expect(log?.received).toEqual(agent.sent);
    expect(agent.received).toEqual(log?.sent);
    // toEqual treats an absent property as undefined; presence is asserted field by field.
    const [succeeded, failed, run] = log?.received.find((m) => m.result_batch)?.result_batch?.results ?? [];
    expect(succeeded).toMatchObject({
      value: 41.5,
      open_ms: 25.2,
      round_trip_ms: 41.5,
      close_code: 1000,
      tls_not_after: new Date('2026-05-30T23:59:59.000Z'),
    });
    expect(succeeded?.run_id).toBeUndefined();
    for (const field of [
      'run_id',
      'value',
      'open_ms',
      'round_trip_ms',
      'close_code',
      'tls_not_after',
    ] as const) {
      expect(failed?.[field], field).toBeUndefined();
    }
    expect(run).toMatchObject({ run_id: 'run-7', value: 0 });
    expect(Buffer.compare(succeeded?.result_json ?? Buffer.alloc(0), probeResultJson(true))).toBe(0);
    expect(JSON.parse(run ? Buffer.from(run.result_json).toString('utf8') : '')).toMatchObject({
      success: false,
      value: null,
    });
    expect(log?.received.find((m) => m.drain_done)).toEqual({ drain_done: {} });
  });

  it('ends a stream whose first message is not a Hello with FAILED_PRECONDITION', async () => {
    const agent = connect(TOKEN);
    agent.send({ heartbeat: { free_slots: 1, in_flight: 0, spool_depth: 0, spool_dropped_total: 0 } });
    // Half-closed at once, so that a server that let the message pass would end the call with OK, quickly.
    agent.close();
    expect(await agent.ended).toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    expect(agent.received).toEqual([]);
  });

  it.each([
    ['an unknown token', 'wsmon_at_revoked'],
    ['no token', undefined],
  ])('refuses %s with UNAUTHENTICATED before sending anything', async (_case, token) => {
    const agent = connect(token);
    agent.send({
      hello: {
        agent_id: '0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f50',
        hostname: 'probe-eu-1',
        version: '1.4.0',
        capabilities: [],
        config_revision: 0,
        test_revisions: {},
      },
    });
    agent.close();
    expect(await agent.ended).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(agent.received).toEqual([]);
  });
});

describe('wsmon.v1 agent messages', () => {
  it('keep a delta, its removals and an empty drain acknowledgement through the wire encoding', () => {
    const delta: ConnectResponse = {
      config_update: {
        revision: 43,
        snapshot: false,
        upserts: [testAssignment({ revision: 43, schedule: { interval_s: 60 }, retry: {} })],
        removed_test_ids: ['c0ffee00-0000-4000-8000-000000000001'],
      },
    };
    const decoded = ConnectResponse.decode(ConnectResponse.encode(delta).finish());
    expect(decoded).toEqual(delta);
    expect(decoded.config_update?.upserts[0]?.retry).toEqual({});
    expect(decoded.config_update?.upserts[0]?.schedule?.cron).toBeUndefined();

    // An empty message still marks which kind was sent.
    expect(ConnectRequest.decode(ConnectRequest.encode({ drain_done: {} }).finish())).toEqual({
      drain_done: {},
    });
    // A kind this version does not know decodes as no kind at all: the control plane's INVALID_ARGUMENT.
    expect(ConnectRequest.decode(Uint8Array.of((15 << 3) | 2, 0))).toEqual({});
  });
});
