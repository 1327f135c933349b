import { randomUUID } from 'node:crypto';
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type {
  AgentHeartbeat,
  AgentResult,
  ConnectRequest,
  ConnectResponse,
  Hello,
  TestAssignment,
} from '@wsmon/proto';
import type { CatalogTest } from './test-catalog';

/** What this control plane can do; a session runs with those of the agent's that are here too. */
export const CONTROL_PLANE_CAPABILITIES = ['config.delta', 'run.now', 'drain'] as const;

/** A request the deserializer could not decode: the stream ends with INVALID_ARGUMENT, not INTERNAL. */
export interface MalformedRequest {
  readonly malformed: string;
}
export type IncomingRequest = ConnectRequest | MalformedRequest;

export type AgentCall = ServerDuplexStream<IncomingRequest, ConnectResponse>;

/** Ends one stream with a status; nothing else is touched. */
export class StreamError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** The location a stream's token belongs to. */
export interface StreamIdentity {
  readonly tokenId: string;
  readonly locationId: string;
  readonly locationName: string;
}

/** What the stream asks of the sessions service. */
export interface AgentStreamHost {
  readonly heartbeatMs: number;
  /** After a valid Hello: register, welcome, synchronise. */
  opened(stream: AgentStream): Promise<void>;
  /** Stores results; resolves once committed. Throws StreamError for a result that cannot be stored. */
  ingest(stream: AgentStream, results: readonly AgentResult[]): Promise<void>;
  /** The agent drained (DrainDone): its tests move at once. */
  drained(stream: AgentStream): Promise<void>;
  /** The stream is over, whatever the reason. Called once. */
  closed(stream: AgentStream, reason: string): void;
  log(line: string): void;
}

/** Upserts per ConfigUpdate: more go as a snapshot in several messages of one revision. */
const MAX_UPSERTS_PER_MESSAGE = 250;
/** Results ingested per transaction at most. */
const MAX_RESULTS_PER_INGEST = 5000;
/** Results waiting for ingestion before the stream stops reading (HTTP/2 flow control takes over). */
const PAUSE_AT_QUEUED_RESULTS = 20_000;
const MAX_AGENT_ID_LENGTH = 128;

type State = 'awaiting_hello' | 'open' | 'drained' | 'closed';

/**
 * One agent's stream on this replica: the protocol's rules (agent.proto) for the messages in, the
 * configuration the agent holds, results on their way to PostgreSQL and their acknowledgements.
 */
export class AgentStream {
  readonly sessionId = randomUUID();
  private state: State = 'awaiting_hello';
  hello: Hello | undefined;
  capabilities: readonly string[] = [];
  /** Test id to the revision the agent holds (as far as this stream sent or the Hello said). */
  readonly held = new Map<string, number>();
  /** Tests another agent has won, kept until the hand-off time (ms) so that no slot is missed. */
  readonly releasing = new Map<string, number>();
  /** Tests the agent said it could not apply, with the revision, for the agents API. */
  readonly rejected = new Map<string, { revision: number; message: string }>();
  configRevision = 0;
  ackedRevision = 0;
  private lastSentRevision = 0;
  private readonly carried = new Set<number>();
  private synchronised = false;
  lastHeartbeat: AgentHeartbeat | undefined;
  private lastReceivedAt = Date.now();
  private lastSequence = 0;
  private queued: AgentResult[] = [];
  private ingesting = false;
  private halfClosed = false;
  private paused = false;
  private configChain: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  resultsIngested = 0;
  /** The agent sent DrainDone: its tests move at once, also when the stream then ends. */
  drainDone = false;
  /** An operator drained it: it gets no new tests. */
  draining = false;
  /** Its session row is written: heartbeats are flushed for it from now on. */
  registered = false;
  /** The status the control plane ended the stream with; undefined when the agent or the network ended it. */
  endStatus: status | undefined;

  constructor(
    private readonly call: AgentCall,
    readonly identity: StreamIdentity,
    private readonly host: AgentStreamHost,
  ) {
    call.on('data', (request: IncomingRequest) => this.receive(request));
    call.on('end', () => {
      this.halfClosed = true;
      this.finishIfDone();
    });
    call.on('cancelled', () => this.close('cancelled by the agent'));
    call.on('error', () => this.close('stream error'));
    call.on('close', () => this.close('stream closed'));
    this.timer = setInterval(() => this.beat(), host.heartbeatMs);
    this.timer.unref();
  }

  get agentId(): string {
    return this.hello?.agent_id ?? '';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get open(): boolean {
    return this.state === 'open';
  }

  has(capability: string): boolean {
    return this.capabilities.includes(capability);
  }

  /** Ends the stream with a status (OK ends it cleanly). */
  end(code: status, details: string): void {
    if (this.state === 'closed') return;
    this.endStatus = code;
    if (code === status.OK) this.call.end();
    else this.call.emit('error', { code, details });
    this.close(details);
  }

  send(message: ConnectResponse): void {
    if (this.state !== 'closed') this.call.write(message);
  }

  welcome(): void {
    this.send({
      welcome: {
        session_id: this.sessionId,
        capabilities: [...this.capabilities],
        heartbeat_interval_ms: this.host.heartbeatMs,
        server_time: new Date(),
        location: this.identity.locationName,
      },
    });
  }

  /**
   * Brings the agent to exactly `desired` at `revision` (greater than anything sent before). The
   * initial synchronisation ends with EndOfSnapshot; later ones send only what changed. Calls are
   * serialised per stream.
   */
  synchronise(desired: readonly CatalogTest[], revision: () => Promise<number>): Promise<void> {
    const run = async () => {
      if (this.state !== 'open') return;
      const wanted = new Map(desired.map((t) => [t.id, t]));
      const upserts = desired.filter((t) => this.held.get(t.id) !== t.revision).map((t) => t.assignment);
      const removed = [...this.held.keys()].filter((id) => !wanted.has(id));
      const initial = !this.synchronised;
      if (!initial && !upserts.length && !removed.length) return;
      let rev = await revision();
      if (rev <= this.lastSentRevision) rev = this.lastSentRevision + 1;
      if (this.state !== 'open') return;
      const snapshot = (initial && !this.has('config.delta')) || upserts.length > MAX_UPSERTS_PER_MESSAGE;
      if (snapshot) {
        const all = desired.map((t) => t.assignment);
        for (let i = 0; i === 0 || i < all.length; i += MAX_UPSERTS_PER_MESSAGE) {
          this.sendUpdate(rev, true, all.slice(i, i + MAX_UPSERTS_PER_MESSAGE), []);
        }
        this.held.clear();
        for (const t of desired) this.held.set(t.id, t.revision);
        this.sendEndOfSnapshot(rev);
      } else {
        if (upserts.length || removed.length) this.sendUpdate(rev, false, upserts, removed);
        for (const t of upserts) this.held.set(t.test_id, t.revision);
        for (const id of removed) this.held.delete(id);
        if (initial) this.sendEndOfSnapshot(rev);
      }
      this.synchronised = true;
    };
    const next = this.configChain.then(run, run);
    this.configChain = next.catch(() => undefined);
    return next;
  }

  /** The agent acknowledges a synchronisation with this revision: it counts as carried. */
  private sendEndOfSnapshot(rev: number): void {
    this.lastSentRevision = rev;
    this.carried.add(rev);
    this.send({ end_of_snapshot: { revision: rev } });
  }

  private sendUpdate(rev: number, snapshot: boolean, upserts: TestAssignment[], removed: string[]): void {
    this.lastSentRevision = rev;
    this.carried.add(rev);
    this.send({ config_update: { revision: rev, snapshot, upserts, removed_test_ids: removed } });
  }

  private receive(request: IncomingRequest): void {
    this.lastReceivedAt = Date.now();
    try {
      this.handle(request);
    } catch (error) {
      if (error instanceof StreamError) this.end(error.code, error.message);
      else this.end(status.INTERNAL, `internal error: ${String(error)}`);
    }
  }

  private handle(request: IncomingRequest): void {
    if ('malformed' in request) throw new StreamError(status.INVALID_ARGUMENT, request.malformed);
    if (this.state === 'closed') return;
    if (this.state === 'drained') {
      throw new StreamError(status.FAILED_PRECONDITION, 'a message after DrainDone');
    }
    const { hello, config_ack, result_batch, heartbeat, drain_done } = request;
    if (!hello && !config_ack && !result_batch && !heartbeat && !drain_done) {
      throw new StreamError(status.INVALID_ARGUMENT, 'ConnectRequest: no kind set (unknown message kind?)');
    }
    if (this.state === 'awaiting_hello') {
      if (!hello) throw new StreamError(status.FAILED_PRECONDITION, 'the first message must be a Hello');
      this.acceptHello(hello);
      return;
    }
    if (hello) throw new StreamError(status.FAILED_PRECONDITION, 'a second Hello');
    if (config_ack) {
      if (!this.carried.has(config_ack.revision)) {
        throw new StreamError(
          status.FAILED_PRECONDITION,
          `ConfigAck.revision: ${config_ack.revision} was never sent on this stream`,
        );
      }
      if (config_ack.revision < this.ackedRevision) {
        throw new StreamError(
          status.FAILED_PRECONDITION,
          `ConfigAck.revision: ${config_ack.revision} is lower than the earlier ${this.ackedRevision}`,
        );
      }
      this.ackedRevision = config_ack.revision;
      this.configRevision = config_ack.revision;
      for (const rev of this.carried) if (rev < config_ack.revision) this.carried.delete(rev);
      for (const r of config_ack.rejected_tests) {
        this.rejected.set(r.test_id, { revision: r.test_revision, message: r.message.slice(0, 500) });
      }
    }
    if (heartbeat) this.lastHeartbeat = heartbeat;
    if (result_batch) this.acceptResults(result_batch.results);
    if (drain_done) {
      if (!this.has('drain')) {
        throw new StreamError(status.FAILED_PRECONDITION, 'DrainDone without the drain capability');
      }
      this.state = 'drained';
      this.drainDone = true;
      void this.host.drained(this).catch((error: unknown) => this.host.log(`drain: ${String(error)}`));
    }
  }

  private acceptHello(hello: Hello): void {
    if (!hello.agent_id || hello.agent_id.length > MAX_AGENT_ID_LENGTH) {
      throw new StreamError(status.INVALID_ARGUMENT, 'Hello.agent_id: required, 1 to 128 characters');
    }
    if (hello.hostname.length > 255 || hello.version.length > 64) {
      throw new StreamError(status.INVALID_ARGUMENT, 'Hello.hostname or Hello.version: too long');
    }
    this.hello = hello;
    this.capabilities = CONTROL_PLANE_CAPABILITIES.filter((c) => hello.capabilities.includes(c));
    this.configRevision = hello.config_revision;
    if (this.has('config.delta')) {
      for (const [id, rev] of Object.entries(hello.test_revisions)) this.held.set(id, rev);
    }
    this.state = 'open';
    this.host.opened(this).catch((error: unknown) => {
      this.end(
        error instanceof StreamError ? error.code : status.UNAVAILABLE,
        error instanceof StreamError ? error.message : `cannot open the session: ${String(error)}`,
      );
    });
  }

  private acceptResults(results: readonly AgentResult[]): void {
    results.forEach((result, i) => {
      if (result.sequence <= this.lastSequence) {
        throw new StreamError(
          status.FAILED_PRECONDITION,
          `ResultBatch.results[${i}].sequence: ${result.sequence} does not increase (last ${this.lastSequence})`,
        );
      }
      if (!result.slot_time) {
        throw new StreamError(status.INVALID_ARGUMENT, `ResultBatch.results[${i}].slot_time: required`);
      }
      if (!result.test_id || !result.result_id) {
        throw new StreamError(
          status.INVALID_ARGUMENT,
          `ResultBatch.results[${i}].${result.test_id ? 'result_id' : 'test_id'}: required`,
        );
      }
      this.lastSequence = result.sequence;
    });
    this.queued.push(...results);
    if (this.queued.length >= PAUSE_AT_QUEUED_RESULTS && !this.paused) {
      this.paused = true;
      this.call.pause();
    }
    void this.drainQueue();
  }

  /** One ingestion at a time per stream, in sequence order; each acknowledged after its commit. */
  private async drainQueue(): Promise<void> {
    if (this.ingesting) return;
    this.ingesting = true;
    try {
      while (this.queued.length && this.state !== 'closed') {
        const chunk = this.queued.splice(0, MAX_RESULTS_PER_INGEST);
        await this.host.ingest(this, chunk);
        this.resultsIngested += chunk.length;
        this.send({ result_ack: { up_to_sequence: chunk[chunk.length - 1]!.sequence } });
        if (this.paused && this.queued.length < PAUSE_AT_QUEUED_RESULTS / 2) {
          this.paused = false;
          this.call.resume();
        }
      }
    } catch (error) {
      // Unacknowledged results stay in the agent's spool; it sends them again after reconnecting.
      if (error instanceof StreamError) this.end(error.code, error.message);
      else this.end(status.UNAVAILABLE, `results not stored, send them again: ${String(error)}`);
    } finally {
      this.ingesting = false;
    }
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (this.halfClosed && !this.ingesting && !this.queued.length && this.state !== 'closed') {
      this.end(status.OK, 'the agent closed the stream');
    }
  }

  private beat(): void {
    if (this.state === 'closed') return;
    const silentMs = Date.now() - this.lastReceivedAt;
    if (silentMs > 3 * this.host.heartbeatMs) {
      this.end(status.UNAVAILABLE, `nothing received from the agent for ${silentMs} ms`);
      return;
    }
    if (this.state !== 'awaiting_hello') this.send({ heartbeat: { server_time: new Date() } });
  }

  private close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.timer);
    this.queued = [];
    this.host.closed(this, reason);
  }
}
