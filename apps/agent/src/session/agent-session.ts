import { status as grpcStatus, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import type {
  AgentServiceClient,
  ConnectRequest,
  ConnectResponse,
  Drain,
  RunNow,
  TestAssignment,
  TestRejection,
  Welcome,
} from '@wsmon/proto/agent';
import type { ConfigStore } from '../config/config-store';
import type { HeldTest } from '../config/test-assignment';
import type { AgentIdentity } from '../identity/agent-identity';
import type { ResultRecord } from '../results/result-record';
import { sleep, systemClock } from '../scheduler';
import type { ResultSpool } from '../spool/result-spool';
import {
  backoffDelayMs,
  classifyStreamError,
  DEFAULT_BACKOFF,
  ReconnectAttempts,
  type BackoffPolicy,
  type StreamErrorClass,
} from './backoff';
import { ConfigSync, keptConfig, ProtocolViolation, type HeldConfig, type SyncStep } from './config-sync';
import {
  bearerMetadata,
  createAgentServiceClient,
  type ControlPlaneConnection,
} from './control-plane-channel';
import { DEFAULT_RESULT_LIMITS, ResultSender, StreamClosedError, type ResultLimits } from './result-sender';

/** What this agent can do (Hello.capabilities); Welcome.capabilities says what is in force. */
export const AGENT_CAPABILITIES: readonly string[] = ['config.delta', 'run.now', 'drain'];

/** What the session asks of the rest of the agent. */
export interface SessionHost {
  /** Runs exactly these tests from now on, on their schedules (none: runs nothing). */
  runTests(tests: readonly HeldTest[]): void;
  /** Probes running now (scheduled and on-demand) and probes that could start. */
  capacity(): { readonly inFlight: number; readonly freeSlots: number };
  /** Runs the test of a RunNow once and spools exactly one result with its `run_id`. Returns at once. */
  runNow(runId: string, test: TestAssignment): void;
  /**
   * Lets the probes in flight finish for `gracePeriodMs`, abandons the rest, and resolves once every
   * result is in the spool and durable.
   */
  settleRuns(gracePeriodMs: number): Promise<void>;
}

export type SessionEvent =
  | {
      readonly type: 'connected';
      readonly sessionId: string;
      readonly location: string;
      readonly capabilities: readonly string[];
      readonly heartbeatIntervalMs: number;
    }
  | {
      readonly type: 'configured';
      readonly revision: number;
      readonly tests: number;
      readonly rejected: readonly TestRejection[];
      /** True when the ack ended a synchronisation (an EndOfSnapshot), false for a delta. */
      readonly synchronised: boolean;
    }
  | { readonly type: 'drained' }
  | {
      readonly type: 'disconnected';
      /** `status`: the call ended with a gRPC status; the others are the agent's own reasons to cancel it. */
      readonly cause: StreamEnd['kind'];
      readonly code?: grpcStatus;
      readonly errorClass: StreamErrorClass;
      readonly delayMs: number;
      readonly message: string;
    };

export interface SessionStatus {
  /** A stream is up and the control plane has welcomed the agent. */
  readonly connected: boolean;
  /** Connected, synchronised on this stream, and not drained. */
  readonly configured: boolean;
  readonly drained: boolean;
  readonly location: string | undefined;
  readonly sessionId: string | undefined;
  readonly configRevision: number;
  readonly heldTests: number;
  readonly rejectedTests: number;
}

export interface AgentSessionOptions {
  readonly connection: ControlPlaneConnection;
  readonly identity: AgentIdentity;
  /** The configuration held at start (the kept one); the session changes it as the control plane says. */
  readonly held: HeldConfig;
  readonly store: Pick<ConfigStore, 'save'>;
  readonly spool: ResultSpool<ResultRecord>;
  readonly host: SessionHost;
  /** One line per event, without the `wsmon agent: ` prefix. */
  readonly log: (line: string) => void;
  readonly capabilities?: readonly string[];
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  /** A session up at least this long resets the reconnect backoff. */
  readonly healthySessionMs?: number;
  readonly resultLimits?: ResultLimits;
  /** How long a new stream may stay silent before its Welcome (afterwards: three heartbeat intervals). */
  readonly welcomeTimeoutMs?: number;
  readonly onEvent?: (event: SessionEvent) => void;
  /** Where grpc-js reads the proxy variables (the process's environment). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface SessionStopOptions {
  /** How long to wait for the control plane to acknowledge the results left. Default 5 s. */
  readonly ackWaitMs?: number;
  /** How long to wait for the control plane to end the call after the half-close. Default 2 s. */
  readonly closeWaitMs?: number;
}

/** Why a stream ended. */
type StreamEnd =
  | { readonly kind: 'status'; readonly code: grpcStatus; readonly details: string }
  | { readonly kind: 'violation'; readonly why: string }
  | { readonly kind: 'dead'; readonly silentMs: number }
  | { readonly kind: 'failed'; readonly why: string }
  | { readonly kind: 'stopped' };

const DEFAULT_WELCOME_TIMEOUT_MS = 30_000;
/** A Welcome whose clock differs from the agent's by more than this is worth a warning: slots shift. */
const CLOCK_SKEW_WARNING_MS = 2_000;
/** uint32 fields of the heartbeat. */
const UINT32_MAX = 0xffff_ffff;

/**
 * The agent's session with the control plane: one long-lived `AgentService.Connect` stream at a
 * time, opened again with backoff whenever it ends (see `backoff.ts`: UNAUTHENTICATED and
 * PERMISSION_DENIED are fatal and retried slowly, the rest transient).
 *
 * On each stream, as `proto/wsmon/v1/agent.proto` orders it: the Hello (identity, capabilities, the
 * kept revision and tests), the Welcome, the initial synchronisation and the later configuration
 * changes (`config-sync.ts`), acknowledged once applied and kept on disk; results from the spool
 * (`result-sender.ts`) and their acknowledgements; heartbeats both ways, a stream silent for three
 * intervals being dead; RunNow; Drain, answered by DrainDone and a half-close, after which the agent
 * runs nothing until a later stream ends a synchronisation. Whatever the control plane sends against
 * these rules cancels the stream, with a log line saying why, and the session reconnects.
 */
export class AgentSession {
  readonly held: HeldConfig;
  private readonly options: AgentSessionOptions;
  private readonly client: AgentServiceClient;
  private readonly capabilities: readonly string[];
  private readonly attempts: ReconnectAttempts;
  private readonly stopController = new AbortController();
  private current: SessionStream | undefined;
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly context: StreamContext;

  constructor(options: AgentSessionOptions) {
    this.options = options;
    this.held = options.held;
    this.capabilities = options.capabilities ?? AGENT_CAPABILITIES;
    this.attempts = new ReconnectAttempts(options.healthySessionMs);
    this.client = createAgentServiceClient(options.connection, options.env);
    this.context = {
      options,
      held: this.held,
      offered: this.capabilities,
      stopping: () => this.stopping !== undefined,
      emit: (event) => this.emit(event),
    };
  }

  /** Connects, and keeps connecting, until `stop`. */
  start(): void {
    this.loop ??= this.run();
  }

  status(): SessionStatus {
    const stream = this.current;
    return {
      connected: stream?.welcome !== undefined && !stream.isDone,
      configured: stream?.isConfigured === true && !this.held.drained,
      drained: this.held.drained,
      location: stream?.welcome?.location,
      sessionId: stream?.welcome?.session_id,
      configRevision: this.held.revision,
      heldTests: this.held.tests.size,
      rejectedTests: stream?.rejectedCount ?? 0,
    };
  }

  /**
   * Ends the session for a shutdown: waits (bounded) for the results left to be acknowledged, sends
   * DrainDone when `drain` is in force and they all were, half-closes, waits (bounded) for the control
   * plane to end the call, and stops reconnecting. Call it once the probes have stopped and their
   * results are in the spool and durable.
   */
  stop(options: SessionStopOptions = {}): Promise<void> {
    this.stopping ??= this.shutdown(options);
    return this.stopping;
  }

  private async shutdown({ ackWaitMs = 5_000, closeWaitMs = 2_000 }: SessionStopOptions): Promise<void> {
    this.stopController.abort();
    await this.current?.shutdown(ackWaitMs, closeWaitMs);
    await this.loop;
    this.client.close();
  }

  private emit(event: SessionEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // An observer must not break the session.
    }
  }

  private async run(): Promise<void> {
    while (!this.stopController.signal.aborted) {
      const call = this.client.connect(bearerMetadata(this.options.connection.token));
      const stream = new SessionStream(this.context, call);
      this.current = stream;
      const end = await stream.ended;
      if (this.stopController.signal.aborted) break;
      const lastedMs = stream.welcomedAtMs === undefined ? 0 : Date.now() - stream.welcomedAtMs;
      const errorClass = end.kind === 'status' ? classifyStreamError(end.code) : 'transient';
      const delayMs = backoffDelayMs(
        this.attempts.next(lastedMs),
        errorClass,
        this.options.random,
        this.options.backoff ?? DEFAULT_BACKOFF,
      );
      const message = this.describe(end, errorClass, delayMs, stream.welcome !== undefined);
      this.options.log(message);
      this.emit({
        type: 'disconnected',
        cause: end.kind,
        ...(end.kind === 'status' ? { code: end.code } : {}),
        errorClass,
        delayMs,
        message,
      });
      await sleep(systemClock, delayMs, this.stopController.signal);
    }
  }

  private describe(end: StreamEnd, errorClass: StreamErrorClass, delayMs: number, welcomed: boolean): string {
    const target = this.options.connection.controlPlane;
    const wait = formatDelay(delayMs);
    switch (end.kind) {
      case 'status': {
        // grpc-js ends some details with an empty "Resolution note: ".
        const details = end.details.replace(/\.?\s*Resolution note:\s*$/, '');
        const what = `${grpcStatus[end.code] ?? end.code}${details ? `: ${details}` : ''}`;
        if (errorClass === 'fatal') {
          return `the control plane at ${target} refused this agent (${what}): check WSMON_TOKEN; retrying in ${wait}`;
        }
        if (end.code === grpcStatus.OK) return `the control plane ended the stream; reconnecting in ${wait}`;
        return welcomed
          ? `disconnected from ${target} (${what}); reconnecting in ${wait}`
          : `cannot connect to ${target} (${what}); retrying in ${wait}`;
      }
      case 'violation':
        return `protocol violation by the control plane: ${end.why}; reconnecting in ${wait}`;
      case 'dead':
        return `nothing received from the control plane for ${end.silentMs} ms: the stream is dead; reconnecting in ${wait}`;
      case 'failed':
        return `the stream failed: ${end.why}; reconnecting in ${wait}`;
      case 'stopped':
        return `the stream was stopped; reconnecting in ${wait}`;
    }
  }
}

/** What a stream shares with its session. */
interface StreamContext {
  readonly options: AgentSessionOptions;
  readonly held: HeldConfig;
  readonly offered: readonly string[];
  readonly stopping: () => boolean;
  readonly emit: (event: SessionEvent) => void;
}

/** One `Connect` call: the protocol of one stream. */
class SessionStream {
  readonly ended: Promise<StreamEnd>;
  welcome: Welcome | undefined;
  welcomedAtMs: number | undefined;
  private resolveEnded: (end: StreamEnd) => void = () => undefined;
  private done = false;
  private cause: StreamEnd | undefined;
  private writable = true;
  private configured = false;
  private draining = false;
  private capabilities = new Set<string>();
  private readonly sync: ConfigSync;
  private readonly abort = new AbortController();
  private readonly senderAbort = new AbortController();
  private sender: ResultSender | undefined;
  private senderDone: Promise<void> = Promise.resolve();
  private chain: Promise<void> = Promise.resolve();
  private silenceLimitMs: number;
  private watchdog: NodeJS.Timeout | undefined;
  private heartbeats: NodeJS.Timeout | undefined;
  private readonly loggedRejections = new Set<string>();

  constructor(
    private readonly context: StreamContext,
    private readonly call: ClientDuplexStream<ConnectRequest, ConnectResponse>,
  ) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.sync = new ConfigSync(context.held);
    this.silenceLimitMs = context.options.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS;
    this.abort.signal.addEventListener('abort', () => this.senderAbort.abort(), { once: true });
    call.on('data', (message: ConnectResponse) => this.receive(message));
    // The status event follows with the same information.
    call.on('error', () => undefined);
    call.on('status', (status: StatusObject) => this.closed(status));
    this.armWatchdog();
    this.send({ hello: this.hello() });
  }

  get isDone(): boolean {
    return this.done;
  }

  get isConfigured(): boolean {
    return this.configured && !this.done;
  }

  get rejectedCount(): number {
    return this.sync.rejectedTests().length;
  }

  /** The shutdown of the session (see `AgentSession.stop`). */
  async shutdown(ackWaitMs: number, closeWaitMs: number): Promise<void> {
    if (this.done) return;
    if (this.welcome === undefined || this.sender === undefined) {
      this.fail({ kind: 'stopped' });
      await this.ended;
      return;
    }
    let waitMs = closeWaitMs;
    if (this.draining) {
      // A Drain is under way: it ends the stream itself.
      waitMs += ackWaitMs;
    } else {
      this.draining = true;
      const acknowledged = await this.sender.whenAllAcknowledged(ackWaitMs);
      if (this.done) return;
      const { depth } = this.context.options.spool.stats();
      if (!acknowledged) {
        this.context.options.log(
          `${depth} results not acknowledged yet: kept in the spool for the next start`,
        );
      }
      await this.halfClose(acknowledged && this.has('drain'));
    }
    const timer = new AbortController();
    const closedInTime = await Promise.race([
      this.ended.then(() => true),
      sleep(systemClock, waitMs, timer.signal).then(() => false),
    ]);
    timer.abort();
    if (!closedInTime) this.fail({ kind: 'stopped' });
    await this.ended;
  }

  private hello(): ConnectRequest['hello'] {
    const { identity } = this.context.options;
    const held = this.context.held;
    return {
      agent_id: identity.agentId,
      hostname: identity.hostname,
      version: identity.version,
      capabilities: [...this.context.offered],
      config_revision: held.revision,
      test_revisions: Object.fromEntries([...held.tests.values()].map((test) => [test.id, test.revision])),
    };
  }

  private has(capability: string): boolean {
    return this.capabilities.has(capability);
  }

  private receive(message: ConnectResponse): void {
    if (this.done || this.cause !== undefined) return;
    this.armWatchdog();
    this.chain = this.chain.then(() => this.handle(message)).catch((error: unknown) => this.failWith(error));
  }

  private failWith(error: unknown): void {
    if (error instanceof StreamClosedError) return;
    if (error instanceof ProtocolViolation) this.fail({ kind: 'violation', why: error.message });
    else this.fail({ kind: 'failed', why: (error as Error).message });
  }

  private async handle(message: ConnectResponse): Promise<void> {
    if (this.done || this.cause !== undefined) return;
    if (message.welcome !== undefined) return this.onWelcome(message.welcome);
    const kind = kindOf(message);
    if (kind === undefined) throw new ProtocolViolation('a message with no kind set');
    if (this.welcome === undefined) throw new ProtocolViolation(`${kind} before the Welcome`);
    if (message.result_ack !== undefined) return this.sender?.acknowledge(message.result_ack.up_to_sequence);
    if (message.heartbeat !== undefined) return; // liveness only: the watchdog was re-armed
    if (!this.writable) return; // after DrainDone or the half-close: nothing more is answered
    if (message.config_update !== undefined) {
      return this.onSyncStep(this.sync.onUpdate(message.config_update, this.has('config.delta')));
    }
    if (message.end_of_snapshot !== undefined) {
      return this.onSyncStep(this.sync.onEndOfSnapshot(message.end_of_snapshot, this.has('config.delta')));
    }
    if (message.run_now !== undefined) return this.onRunNow(message.run_now);
    if (message.drain !== undefined) return this.onDrain(message.drain);
  }

  private onWelcome(welcome: Welcome): void {
    const settings = this.context.options;
    if (this.welcome !== undefined) throw new ProtocolViolation('a second Welcome');
    if (welcome.heartbeat_interval_ms < 1000) {
      throw new ProtocolViolation(
        `Welcome.heartbeat_interval_ms is ${welcome.heartbeat_interval_ms}, under 1000`,
      );
    }
    this.welcome = welcome;
    this.welcomedAtMs = Date.now();
    this.capabilities = new Set(welcome.capabilities.filter((c) => this.context.offered.includes(c)));
    this.silenceLimitMs = 3 * welcome.heartbeat_interval_ms;
    this.armWatchdog();
    this.heartbeats = setInterval(() => this.heartbeat(), welcome.heartbeat_interval_ms);
    settings.log(
      `connected to ${settings.connection.controlPlane} as ${settings.identity.agentId} (location ${welcome.location})`,
    );
    if (welcome.server_time !== undefined) {
      const skewMs = Date.now() - welcome.server_time.getTime();
      if (Math.abs(skewMs) > CLOCK_SKEW_WARNING_MS) {
        settings.log(
          `this machine's clock differs from the control plane's by ${skewMs} ms: every slot shifts`,
        );
      }
    }
    this.sender = new ResultSender(
      settings.spool,
      (request) => this.write(request),
      this.senderAbort.signal,
      settings.resultLimits ?? DEFAULT_RESULT_LIMITS,
    );
    this.senderDone = this.sender
      .run()
      .catch((error: unknown) =>
        this.fail({ kind: 'failed', why: `results cannot be sent: ${(error as Error).message}` }),
      );
    this.context.emit({
      type: 'connected',
      sessionId: welcome.session_id,
      location: welcome.location,
      capabilities: [...this.capabilities],
      heartbeatIntervalMs: welcome.heartbeat_interval_ms,
    });
  }

  private async onSyncStep(step: SyncStep): Promise<void> {
    const settings = this.context.options;
    const held = this.context.held;
    if (step.kind === 'buffered') return;
    if (step.kind === 'applied' && step.synchronised && !this.draining) {
      held.drained = false;
      this.configured = true;
    }
    if (!held.drained) this.runHeldTests();
    if (step.kind === 'changed') return;
    try {
      await settings.store.save(keptConfig(held));
    } catch (error) {
      settings.log(
        `the configuration could not be kept on disk (${(error as Error).message}); it runs all the same`,
      );
    }
    this.send({ config_ack: step.ack });
    for (const rejection of step.ack.rejected_tests) {
      const key = `${rejection.test_id}@${rejection.test_revision}`;
      if (this.loggedRejections.has(key)) continue;
      this.loggedRejections.add(key);
      settings.log(
        `rejected test ${rejection.test_id} revision ${rejection.test_revision}: ${rejection.message}`,
      );
    }
    settings.log(`configured: ${held.tests.size} tests at revision ${held.revision}`);
    this.context.emit({
      type: 'configured',
      revision: held.revision,
      tests: held.tests.size,
      rejected: step.ack.rejected_tests,
      synchronised: step.synchronised,
    });
  }

  private runHeldTests(): void {
    try {
      this.context.options.host.runTests([...this.context.held.tests.values()]);
    } catch (error) {
      this.context.options.log(`the tests could not be scheduled: ${(error as Error).message}`);
    }
  }

  private onRunNow(runNow: RunNow): void {
    const settings = this.context.options;
    if (!this.has('run.now')) throw new ProtocolViolation('RunNow while run.now is not in force');
    if (runNow.run_id === '' || runNow.test === undefined || runNow.test.test_id === '') {
      throw new ProtocolViolation('RunNow without a run_id or a test');
    }
    if (this.draining || this.context.stopping()) {
      settings.log(`run ${runNow.run_id} of test ${runNow.test.test_id} not started: the agent is draining`);
      return;
    }
    settings.log(`run now: test ${runNow.test.test_id} (run ${runNow.run_id})`);
    settings.host.runNow(runNow.run_id, runNow.test);
  }

  private onDrain(drain: Drain): void {
    if (!this.has('drain')) throw new ProtocolViolation('Drain while drain is not in force');
    if (this.draining) return;
    this.draining = true;
    // Not awaited: the drain waits for ResultAcks, which come through this same chain.
    void this.drain(drain).catch((error: unknown) => this.failWith(error));
  }

  private async drain(drain: Drain): Promise<void> {
    const settings = this.context.options;
    const held = this.context.held;
    settings.log(
      `draining: ${drain.reason || 'asked by the control plane'} (probes in flight get ${drain.grace_period_ms} ms)`,
    );
    held.drained = true;
    this.configured = false;
    settings.host.runTests([]);
    try {
      await settings.store.save(keptConfig(held));
    } catch (error) {
      settings.log(`the drained state could not be kept on disk (${(error as Error).message})`);
    }
    await settings.host.settleRuns(drain.grace_period_ms);
    if (this.done || this.sender === undefined) return;
    if (!(await this.sender.whenAllAcknowledged())) return;
    await this.halfClose(true);
  }

  /** Stops sending results and heartbeats, sends DrainDone if asked to, and half-closes. */
  private async halfClose(drainDone: boolean): Promise<void> {
    if (this.done || !this.writable) return;
    this.senderAbort.abort();
    await this.senderDone;
    clearInterval(this.heartbeats);
    if (this.done) return;
    if (drainDone) this.send({ drain_done: {} });
    this.writable = false;
    this.call.end();
    if (drainDone) {
      this.context.options.log('drained: DrainDone sent');
      this.context.emit({ type: 'drained' });
    }
  }

  private heartbeat(): void {
    const { host, spool } = this.context.options;
    const capacity = host.capacity();
    const stats = spool.stats();
    this.send({
      heartbeat: {
        sent_time: new Date(),
        free_slots: Math.min(capacity.freeSlots, UINT32_MAX),
        in_flight: Math.min(capacity.inFlight, UINT32_MAX),
        spool_depth: Math.min(stats.depth, UINT32_MAX),
        spool_dropped_total: stats.droppedTotal,
      },
    });
  }

  /** Writes without waiting for the stream to take more (small control messages). */
  private send(request: ConnectRequest): void {
    if (this.writable && !this.done) this.call.write(request);
  }

  /** Writes, resolving once the stream takes more: grpc-js's backpressure. */
  private write(request: ConnectRequest): Promise<void> {
    if (!this.writable || this.done) return Promise.reject(new StreamClosedError('the stream is closed'));
    if (this.call.write(request)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.call.off('drain', done);
        this.senderAbort.signal.removeEventListener('abort', done);
        resolve();
      };
      this.call.on('drain', done);
      this.senderAbort.signal.addEventListener('abort', done, { once: true });
    });
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    const silentMs = this.silenceLimitMs;
    this.watchdog = setTimeout(() => this.fail({ kind: 'dead', silentMs }), silentMs);
  }

  /** Ends the stream for the agent's own reason: the call is cancelled and its status ignored. */
  private fail(end: StreamEnd): void {
    if (this.done || this.cause !== undefined) return;
    this.cause = end;
    this.writable = false;
    this.abort.abort();
    this.call.cancel();
  }

  private closed(status: StatusObject): void {
    if (this.done) return;
    this.done = true;
    this.writable = false;
    clearTimeout(this.watchdog);
    clearInterval(this.heartbeats);
    this.abort.abort();
    const end = this.cause ?? { kind: 'status', code: status.code, details: status.details };
    this.resolveEnded(end);
  }
}

function kindOf(message: ConnectResponse): string | undefined {
  const kinds: Record<string, unknown> = { ...message };
  return Object.keys(kinds).find((key) => kinds[key] !== undefined);
}

function formatDelay(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}
