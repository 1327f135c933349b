import * as grpc from '@grpc/grpc-js';
import {
  AgentServiceService,
  type ConnectRequest,
  type ConnectResponse,
  type TestAssignment,
  type Welcome,
} from '@wsmon/proto/agent';

type RequestKind = keyof ConnectRequest;
type RequestOf<K extends RequestKind> = NonNullable<ConnectRequest[K]>;

const WAIT_MS = 10_000;

/** One `Connect` call as the scripted control plane sees it. */
export class ScriptedStream {
  readonly received: ConnectRequest[] = [];
  /** Resolves when the agent half-closes (ends its side). */
  readonly halfClosed: Promise<void>;
  /** Resolves when the call is over for the server: cancelled by the agent, or ended. */
  readonly closed: Promise<void>;
  cancelled = false;
  private readonly cursors = new Map<RequestKind, number>();
  private readonly waiters = new Set<() => void>();
  private ended = false;
  private autoAck = false;

  constructor(readonly call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) {
    call.on('data', (request: ConnectRequest) => {
      this.received.push(request);
      const last = request.result_batch?.results.at(-1)?.sequence;
      if (this.autoAck && last !== undefined) this.send({ result_ack: { up_to_sequence: last } });
      for (const wake of [...this.waiters]) wake();
    });
    call.on('error', () => undefined);
    this.halfClosed = new Promise((resolve) => call.on('end', () => resolve()));
    this.closed = new Promise((resolve) => {
      call.on('cancelled', () => {
        this.cancelled = true;
        resolve();
      });
      call.on('close', () => resolve());
      call.on('finish', () => resolve());
    });
  }

  get metadata(): grpc.Metadata {
    return this.call.metadata;
  }

  /** The next message of `kind` not taken yet, in arrival order; rejects after `timeoutMs`. */
  next<K extends RequestKind>(kind: K, timeoutMs = WAIT_MS): Promise<RequestOf<K>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const from = this.cursors.get(kind) ?? 0;
        const index = this.received.findIndex((m, i) => i >= from && m[kind] !== undefined);
        if (index === -1) return false;
        this.cursors.set(kind, index + 1);
        this.waiters.delete(wake);
        clearTimeout(timer);
        resolve(this.received[index]![kind] as RequestOf<K>);
        return true;
      };
      const wake = () => void check();
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        const kinds = this.received.map((m) => Object.keys(m).find((k) => m[k as RequestKind] !== undefined));
        reject(new Error(`no ${kind} within ${timeoutMs} ms; received: ${kinds.join(', ')}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(wake);
    });
  }

  /** Messages of `kind` received so far. */
  all<K extends RequestKind>(kind: K): RequestOf<K>[] {
    return this.received.filter((m) => m[kind] !== undefined).map((m) => m[kind] as RequestOf<K>);
  }

  /** From now on, acknowledges every result batch as it arrives. */
  acknowledgeResults(): void {
    this.autoAck = true;
    const last = this.all('result_batch').at(-1)?.results.at(-1)?.sequence;
    if (last !== undefined) this.send({ result_ack: { up_to_sequence: last } });
  }

  send(response: ConnectResponse): void {
    if (!this.ended) this.call.write(response);
  }

  welcome(overrides: Partial<Welcome> = {}): void {
    this.send({
      welcome: {
        session_id: 'session-1',
        capabilities: ['config.delta', 'run.now', 'drain'],
        heartbeat_interval_ms: 1000,
        server_time: new Date(),
        location: 'eu-1',
        ...overrides,
      },
    });
  }

  /** A whole snapshot in one ConfigUpdate, closed by its EndOfSnapshot. */
  snapshot(revision: number, upserts: TestAssignment[]): void {
    this.send({ config_update: { revision, snapshot: true, upserts, removed_test_ids: [] } });
    this.send({ end_of_snapshot: { revision } });
  }

  delta(revision: number, upserts: TestAssignment[], removed: string[] = []): void {
    this.send({ config_update: { revision, snapshot: false, upserts, removed_test_ids: removed } });
  }

  /** Ends the call: OK, or with an error status. */
  end(code: grpc.status = grpc.status.OK, details = ''): void {
    if (this.ended) return;
    this.ended = true;
    if (code === grpc.status.OK) this.call.end();
    else this.call.emit('error', { code, details });
  }
}

export interface ScriptedControlPlaneOptions {
  /** TLS: the server's certificate and key (plaintext without). */
  readonly tls?: { readonly certPem: string; readonly keyPem: string };
  /** The token the `authorization` metadata must carry; others end with UNAUTHENTICATED. */
  readonly token?: string;
}

/**
 * A real grpc-js server of `wsmon.v1.AgentService` on 127.0.0.1 whose streams a test drives by
 * hand: it takes each call, and the test reads the agent's messages and writes the control plane's.
 */
export class ScriptedControlPlane {
  readonly streams: ScriptedStream[] = [];
  private readonly waiters = new Set<() => void>();
  private taken = 0;
  private boundPort = 0;

  private constructor(private readonly server: grpc.Server) {}

  get port(): number {
    return this.boundPort;
  }

  static async start(options: ScriptedControlPlaneOptions = {}, port = 0): Promise<ScriptedControlPlane> {
    const server = new grpc.Server();
    const credentials = options.tls
      ? grpc.ServerCredentials.createSsl(null, [
          { cert_chain: Buffer.from(options.tls.certPem), private_key: Buffer.from(options.tls.keyPem) },
        ])
      : grpc.ServerCredentials.createInsecure();
    const plane = new ScriptedControlPlane(server);
    server.addService(AgentServiceService, {
      connect: (call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
        if (
          options.token !== undefined &&
          call.metadata.get('authorization')[0] !== `Bearer ${options.token}`
        ) {
          call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'unknown agent token' });
          return;
        }
        plane.accept(call);
      },
    });
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, credentials, (error, actual) =>
        error ? reject(error) : resolve(actual),
      ),
    );
    plane.boundPort = bound;
    return plane;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The next call not taken yet. */
  nextStream(timeoutMs = WAIT_MS): Promise<ScriptedStream> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const stream = this.streams[this.taken];
        if (stream === undefined) return false;
        this.taken++;
        this.waiters.delete(wake);
        clearTimeout(timer);
        resolve(stream);
        return true;
      };
      const wake = () => void check();
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`no new stream within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.waiters.add(wake);
    });
  }

  close(): Promise<void> {
    for (const stream of this.streams) stream.end(grpc.status.UNAVAILABLE, 'shutting down');
    this.server.forceShutdown();
    return Promise.resolve();
  }

  private accept(call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    this.streams.push(new ScriptedStream(call));
    for (const wake of [...this.waiters]) wake();
  }
}

/** A test assignment as the control plane sends it (a probe of the shared schema, defaults left out). */
export function assignment(overrides: Partial<TestAssignment> = {}): TestAssignment {
  return {
    test_id: 'test-1',
    revision: 1,
    name: 'echo',
    probe: { url: 'ws://127.0.0.1:9/echo', timeout_ms: 2000 },
    schedule: { interval_s: 60 },
    retry: { attempts: 0, delay_ms: 0 },
    ...overrides,
  };
}
