import { randomUUID } from 'node:crypto';
import { credentials, Metadata, status, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import {
  AgentServiceClient,
  type AgentHeartbeat,
  type AgentResult,
  type ConnectRequest,
  type ConnectResponse,
  type Hello,
} from '@wsmon/proto/agent';

/**
 * A scripted agent speaking AgentService over real gRPC: the protocol tests drive the control plane
 * message by message, including the messages a correct agent never sends.
 */
export interface ScriptedAgent {
  readonly agentId: string;
  readonly received: ConnectResponse[];
  /** What it answers the control plane's heartbeats with. */
  heartbeat: AgentHeartbeat;
  send(request: ConnectRequest): void;
  /** Waits for the next message (after those already taken) matching the predicate. */
  next<K extends keyof ConnectResponse>(
    kind: K,
    timeoutMs?: number,
  ): Promise<NonNullable<ConnectResponse[K]>>;
  /** The call's final status. */
  readonly ended: Promise<StatusObject>;
  /** Half-closes. */
  close(): void;
  cancel(): void;
}

export function agentClient(grpcAddress: string): AgentServiceClient {
  return new AgentServiceClient(grpcAddress, credentials.createInsecure());
}

export function openAgentStream(
  client: AgentServiceClient,
  token: string | undefined,
  hello?: Partial<Hello> | null,
): ScriptedAgent {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  const call: ClientDuplexStream<ConnectRequest, ConnectResponse> = client.connect(metadata);
  const received: ConnectResponse[] = [];
  let taken = 0;
  const waiters: (() => void)[] = [];
  call.on('data', (message: ConnectResponse) => {
    // Heartbeat for heartbeat, as a live agent does, so that idle scripted streams stay open.
    if (message.heartbeat) call.write({ heartbeat: agent.heartbeat });
    received.push(message);
    waiters.splice(0).forEach((wake) => wake());
  });
  const ended = new Promise<StatusObject>((resolve) => {
    call.on('status', (s: StatusObject) => {
      resolve(s);
      waiters.splice(0).forEach((wake) => wake());
    });
    call.on('error', () => undefined);
  });
  let finalStatus: StatusObject | undefined;
  void ended.then((s) => (finalStatus = s));
  const agentId = hello?.agent_id ?? randomUUID();
  if (hello !== null) {
    call.write({
      hello: {
        agent_id: agentId,
        hostname: 'scripted',
        version: '0.0.0-test',
        capabilities: ['config.delta', 'run.now', 'drain'],
        config_revision: 0,
        test_revisions: {},
        ...hello,
      },
    });
  }
  const agent: ScriptedAgent = {
    agentId,
    heartbeat: { free_slots: 1, in_flight: 0, spool_depth: 0, spool_dropped_total: 0 },
    received,
    send: (request) => call.write(request),
    async next(kind, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (taken < received.length) {
          const message = received[taken++]!;
          const value = message[kind];
          if (value !== undefined) return value as never;
        }
        if (finalStatus) {
          throw new Error(
            `stream ended (${status[finalStatus.code]}: ${finalStatus.details}) before a ${kind}`,
          );
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${kind} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    ended,
    close: () => call.end(),
    cancel: () => call.cancel(),
  };
  return agent;
}

/** A realistic result of a scheduled run. */
export function scheduledResult(testId: string, sequence: number, slotTime: Date): AgentResult {
  return {
    result_id: randomUUID(),
    sequence,
    test_id: testId,
    test_revision: 1,
    slot_time: slotTime,
    started_time: new Date(slotTime.getTime() + 3),
    attempts: 1,
    success: true,
    value: 12.5,
    reason: '',
    cause: '',
    category: '',
    open_ms: 4.2,
    round_trip_ms: 1.1,
    total_ms: 6.3,
    close_code: 1000,
    result_json: Buffer.from(JSON.stringify({ success: true, timings: { open_ms: 4.2, total_ms: 6.3 } })),
  };
}
