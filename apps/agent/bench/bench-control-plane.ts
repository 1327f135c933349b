import * as grpc from '@grpc/grpc-js';
import {
  AgentServiceService,
  type AgentResult,
  type ConnectRequest,
  type ConnectResponse,
  type TestAssignment,
} from '@wsmon/proto/agent';

/** Upserts per ConfigUpdate of a snapshot, as the control plane splits large ones. */
const SNAPSHOT_CHUNK = 250;
/** The control plane's default (WSMON_AGENT_HEARTBEAT_MS). */
const HEARTBEAT_INTERVAL_MS = 10_000;

type Call = grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>;

/**
 * The least control plane an agent under load needs, answering by itself on 127.0.0.1: every stream
 * gets a Welcome, a snapshot of the assigned tests (ConfigUpdates of at most 250 upserts, then
 * EndOfSnapshot), a ResultAck for every ResultBatch as it arrives, heartbeats, and the end of the call
 * when the agent half-closes. Each result is handed to `onResult` and then forgotten.
 *
 * Not `ScriptedControlPlane` (src/session), which a spec drives message by message: it keeps every
 * message received, which over a run would be tens of thousands of results with their JSON in the
 * process that shares the machine's cores with the agent under measurement.
 */
export class BenchControlPlane {
  /** Streams opened since the start: more than one per agent means it reconnected. */
  streams = 0;
  onResult: (result: AgentResult) => void = () => undefined;
  private tests: readonly TestAssignment[] = [];
  private revision = 0;
  private readonly calls = new Set<Call>();
  private configured: { readonly revision: number; readonly resolve: () => void } | undefined;

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(token: string): Promise<BenchControlPlane> {
    const server = new grpc.Server();
    const self: { plane?: BenchControlPlane } = {};
    server.addService(AgentServiceService, {
      connect: (call: Call) => {
        if (call.metadata.get('authorization')[0] !== `Bearer ${token}`) {
          call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'unknown agent token' });
          return;
        }
        self.plane?.accept(call);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    self.plane = new BenchControlPlane(server, port);
    return self.plane;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * What every stream opened from now on is synchronised with. Resolves at the first ConfigAck of it
   * (the agent has applied the tests and scheduled them), rejects after `timeoutMs`.
   */
  assign(tests: readonly TestAssignment[], timeoutMs: number): Promise<void> {
    this.tests = tests;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ConfigAck of ${tests.length} tests within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.configured = {
        revision: this.revision + 1,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  }

  close(): void {
    for (const call of this.calls) call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'stopping' });
    this.server.forceShutdown();
  }

  private accept(call: Call): void {
    this.streams++;
    this.calls.add(call);
    let ackedUpTo = 0;
    const send = (response: ConnectResponse) => {
      if (!call.cancelled && !call.writableEnded) call.write(response);
    };
    const heartbeats = setInterval(
      () => send({ heartbeat: { server_time: new Date() } }),
      HEARTBEAT_INTERVAL_MS,
    );
    const closed = () => {
      clearInterval(heartbeats);
      this.calls.delete(call);
    };
    call.on('data', (request: ConnectRequest) => {
      if (request.hello !== undefined) {
        send({
          welcome: {
            session_id: `bench-${this.streams}`,
            capabilities: ['config.delta', 'run.now', 'drain'],
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
            server_time: new Date(),
            location: 'bench',
          },
        });
        const revision = ++this.revision;
        for (let i = 0; i === 0 || i < this.tests.length; i += SNAPSHOT_CHUNK) {
          const upserts = this.tests.slice(i, i + SNAPSHOT_CHUNK);
          send({ config_update: { revision, snapshot: true, upserts, removed_test_ids: [] } });
        }
        send({ end_of_snapshot: { revision } });
      } else if (request.config_ack !== undefined) {
        if (this.configured !== undefined && request.config_ack.revision >= this.configured.revision) {
          this.configured.resolve();
          this.configured = undefined;
        }
      } else if (request.result_batch !== undefined) {
        for (const result of request.result_batch.results) this.onResult(result);
        const last = request.result_batch.results.at(-1)?.sequence ?? 0;
        // Cumulative and never decreasing, also when a reconnected agent sends results again.
        if (last > ackedUpTo) {
          ackedUpTo = last;
          send({ result_ack: { up_to_sequence: last } });
        }
      }
    });
    call.on('end', () => {
      if (!call.writableEnded) call.end();
    });
    call.on('error', () => undefined);
    call.on('cancelled', closed);
    call.on('close', closed);
    call.on('finish', closed);
  }
}
