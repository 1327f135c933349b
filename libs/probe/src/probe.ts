import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import WebSocket from 'ws';
import {
  emptyProbeTimings,
  parseProbeConfig,
  type AssertionResult,
  type CloseInfo,
  type ConfigFieldError,
  type DisconnectStep,
  type HoldStep,
  type PingStep,
  type ProbeConfig,
  type ProbeResult,
  type ProbeTimings,
  type ProfileFact,
  type ProfilePhaseResult,
  type ReceivedMessage,
  type ReceiveStep,
  type Step,
  type StepResult,
  type TlsDetails,
  type UpgradeResponse,
} from '@wsmon/contracts';
import { evaluateAssertion, evaluateMessageAssertion, RegexCache } from './assertions';
import { connectTcp, destroySocket, resolveHost, startTls } from './connect';
import { systemLookup, type HostLookup, type ResolvedAddress } from './lookup';
import { classifyUpgradeError, fail, ProbeFailureError } from './failure';
import {
  compileProfile,
  type Inbound,
  type ProfileConnection,
  type ProfileDriver,
  type ProfileSession,
} from './profiles';
import { scenarioSteps } from './scenario';
import { displayUrl, REDACTED, SecretScrubber } from './secrets';
import { Deadline, now, roundMs, TIMED_OUT, waitFor } from './wait';

export const PROBE_USER_AGENT = 'wsmon-probe/0.1 (+https://github.com/wsmon)';
/** A probe that has decided its verdict does not wait long on a server that will not close. */
export const IMPLICIT_CLOSE_GRACE_MS = 2000;
/** Frames above this are refused (close 1009): a probe must not let an endpoint exhaust the agent. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
const BODY_PREVIEW_BYTES = 1024;
const BODY_READ_GRACE_MS = 1000;
const MESSAGE_PREVIEW_BYTES = 4096;
const DEFAULT_HOLD_PING_INTERVAL_MS = 1000;

/** A compiled probe definition: validate once, run many times (the agent runs one per schedule tick). */
export interface Probe {
  readonly config: ProbeConfig;
  run(): Promise<ProbeResult>;
}

/** What the engine takes from its host rather than from the configuration. */
export interface ProbeRuntime {
  /** Name resolution; the operating system's resolver by default. */
  readonly lookup?: HostLookup;
}

/** Compiles a validated configuration; per-run work is then only the network. */
export function createProbe(config: ProbeConfig, runtime: ProbeRuntime = {}): Probe {
  const definition = new ProbeDefinition(config, runtime.lookup ?? systemLookup);
  return { config, run: () => new ProbeRun(definition).run() };
}

/**
 * Validates and runs one probe. An invalid configuration yields a failed result with reason
 * `invalid_config` and the field errors, and never opens a connection.
 */
export async function runProbe(input: unknown, runtime: ProbeRuntime = {}): Promise<ProbeResult> {
  const parsed = parseProbeConfig(input);
  if (!parsed.ok) return invalidConfigResult(input, parsed.errors);
  return createProbe(parsed.value, runtime).run();
}

class ProbeDefinition {
  readonly url: URL;
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly steps: readonly Step[];
  readonly scrubber: SecretScrubber;
  readonly displayUrl: string;
  readonly headers: Record<string, string>;
  readonly regexes = new RegexCache();
  /** The protocol profile, compiled once; undefined for `raw`. */
  readonly profile: ProfileDriver | undefined;
  /** The URL the WebSocket connects to: the configured one, unless the profile adjusts it. */
  readonly wsUrl: string;
  readonly protocols: readonly string[];
  readonly serverName: string | undefined;
  readonly identity: string;
  /** An IP literal needs no lookup: decided once, not per run. */
  readonly literalAddress: ResolvedAddress | undefined;
  private secureContext: SecureContext | undefined;

  constructor(
    readonly config: ProbeConfig,
    readonly lookup: HostLookup,
  ) {
    this.url = new URL(config.url);
    this.secure = this.url.protocol === 'wss:';
    this.host = this.url.hostname.replace(/^\[|\]$/g, '');
    this.port = this.url.port ? Number(this.url.port) : this.secure ? 443 : 80;
    this.steps = scenarioSteps(config);
    this.profile = compileProfile(config, this.regexes);
    this.wsUrl = this.profile?.url ?? config.url;
    this.protocols = config.protocols.length > 0 ? config.protocols : (this.profile?.protocols ?? []);
    this.scrubber = new SecretScrubber(config, this.profile?.secrets);
    this.displayUrl = displayUrl(this.wsUrl);
    this.headers = handshakeHeaders(config, this.url);
    const named = config.tls?.server_name ?? (isIP(this.host) ? undefined : this.host);
    this.serverName = named;
    this.identity = named ?? this.host;
    const family = isIP(this.host);
    this.literalAddress = family ? { address: this.host, family: family as 4 | 6 } : undefined;
  }

  /** Built lazily and once: a context with a few hundred roots is costly to make per run. */
  tlsContext(): SecureContext | undefined {
    const caPem = this.config.tls?.ca_pem;
    if (caPem === undefined) return undefined;
    this.secureContext ??= createSecureContext({ ca: [...rootCertificates, caPem] });
    return this.secureContext;
  }
}

function handshakeHeaders(config: ProbeConfig, url: URL): Record<string, string> {
  const headers: Record<string, string> = {};
  const has = (name: string) => Object.keys(config.headers).some((h) => h.toLowerCase() === name);
  if (!has('user-agent')) headers['User-Agent'] = PROBE_USER_AGENT;
  Object.assign(headers, config.headers);
  if (config.cookies !== undefined) headers.Cookie = config.cookies;
  const credentials = config.basic_auth
    ? { username: config.basic_auth.username, password: config.basic_auth.password }
    : url.username
      ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
      : undefined;
  if (credentials) {
    const token = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    headers.Authorization = `Basic ${token}`;
  }
  return headers;
}

/** The timings a run fills in as it goes; total_ms is taken at the end. */
type Timings = { -readonly [K in Exclude<keyof ProbeTimings, 'total_ms'>]: ProbeTimings[K] };

/** One run: one connection, the scenario, the close, the verdict. */
class ProbeRun {
  private readonly startedAtMs = now();
  private readonly startedAt = new Date();
  private readonly deadline: Deadline;
  private readonly timings: Timings = emptyProbeTimings();
  private remote: { address: string; port: number; family: 4 | 6 } | null = null;
  private socket: Socket | null = null;
  private ws: WebSocket | null = null;
  private tls: TlsDetails | null = null;
  private upgrade: UpgradeResponse | null = null;
  private rawHeaders: Record<string, string> | null = null;
  private readonly inbox: Inbound[] = [];
  private cursor = 0;
  private readonly pongs: { payload: string; atMs: number }[] = [];
  private close: (CloseInfo & { atMs: number }) | null = null;
  private closeStartedMs: number | null = null;
  private clientClosed = false;
  private wsClosed = false;
  private wake: (() => void) | null = null;
  private messagesSent = 0;
  private lastSendMs: number | null = null;
  private matched: Inbound | null = null;
  private readonly stepResults: StepResult[] = [];
  private readonly stepAssertions: AssertionResult[] = [];
  private readonly profilePhases: ProfilePhaseResult[] = [];
  private readonly profileFacts: Record<string, ProfileFact> = {};
  private currentPhase: string | null = null;
  /** Further connections a profile opened (sticky sessions), until released. */
  private readonly extraConnections = new Map<ProfileConnection, ProbeRun>();
  private extraMessagesSent = 0;
  private extraMessagesReceived = 0;

  /** `deadline`: the run's own, unless this is a further connection of a run (which owns the deadline). */
  constructor(
    private readonly definition: ProbeDefinition,
    deadline?: Deadline,
  ) {
    this.deadline = deadline ?? new Deadline(this.startedAtMs + definition.config.timeout_ms);
  }

  private remaining(capMs?: number): number {
    const left = this.deadline.remaining();
    return capMs === undefined ? left : Math.min(left, capMs);
  }

  /** The limit of a wait: the run's deadline, unless `capMs` ends it sooner. */
  private limit(capMs?: number): Deadline | number {
    return capMs !== undefined && capMs < this.deadline.remaining() ? capMs : this.deadline;
  }

  /** The limit of a wait that must end by `endMs` on the monotonic clock. */
  private limitUntil(endMs: number): Deadline | number {
    return endMs >= this.deadline.atMs ? this.deadline : Math.max(0, endMs - now());
  }

  private since(startMs: number): number {
    return roundMs(now() - startMs);
  }

  async run(): Promise<ProbeResult> {
    let failure: ProbeFailureError | null = null;
    try {
      await this.open();
      await this.runSteps();
      if (this.definition.profile) await this.definition.profile.run(this.profileSession());
    } catch (error) {
      failure = error instanceof ProbeFailureError ? error : unexpected(error);
    }
    try {
      for (const extra of [...this.extraConnections.keys()]) await this.release(extra);
      await this.finishConnection();
    } finally {
      this.deadline.dispose();
    }
    return this.buildResult(failure);
  }

  // ---------- profiles ----------

  /** The connection as a profile drives it. */
  private connection(): ProfileConnection {
    return {
      send: (text) => {
        if (this.ws?.readyState !== WebSocket.OPEN) return;
        this.ws.send(text);
        this.messagesSent++;
      },
      next: (endMs) => this.nextMessage(endMs),
    };
  }

  private profileSession(): ProfileSession {
    return {
      ...this.connection(),
      endAfter: (capMs) => now() + this.remaining(capMs),
      phase: (name, body) => this.profilePhase(name, body),
      fact: (name, value) => {
        this.profileFacts[name] = value;
      },
      roundTrip: (ms) => {
        this.timings.round_trip_ms ??= ms;
      },
      subject: (text, atMs) => {
        this.matched = { data: Buffer.from(text, 'utf8'), binary: false, atMs };
      },
      connectAgain: () => this.connectAgain(),
      release: (connection) => this.release(connection),
      closeOwn: () => this.finishConnection(),
    };
  }

  private async nextMessage(endMs: number): Promise<Inbound | null> {
    for (;;) {
      const message = this.inbox[this.cursor];
      if (message) {
        this.cursor++;
        return message;
      }
      if (this.close) throw this.closedEarly(`during ${this.currentPhase ?? 'the conversation'}`);
      if (!(await this.nextEvent(this.limitUntil(endMs)))) {
        if (this.inbox[this.cursor] || this.close) continue;
        return null;
      }
    }
  }

  private async profilePhase<T>(name: string, body: () => Promise<T>): Promise<T> {
    const startMs = now();
    const outer = this.currentPhase;
    this.currentPhase = name;
    const record = (passed: boolean, detail?: string) =>
      this.profilePhases.push({
        name,
        passed,
        start_ms: roundMs(startMs - this.startedAtMs),
        duration_ms: this.since(startMs),
        ...(detail === undefined ? {} : { detail }),
      });
    try {
      const value = await body();
      record(true);
      return value;
    } catch (error) {
      const failure = error instanceof ProbeFailureError ? error : unexpected(error);
      record(false, failure.message);
      throw failure;
    } finally {
      this.currentPhase = outer;
    }
  }

  private async connectAgain(): Promise<ProfileConnection> {
    const run = new ProbeRun(this.definition, this.deadline);
    try {
      await run.open();
    } catch (error) {
      await run.finishConnection();
      throw error;
    }
    const connection = run.connection();
    this.extraConnections.set(connection, run);
    return connection;
  }

  private async release(connection: ProfileConnection): Promise<void> {
    const run = this.extraConnections.get(connection);
    if (!run) return;
    this.extraConnections.delete(connection);
    await run.finishConnection();
    this.extraMessagesSent += run.messagesSent;
    this.extraMessagesReceived += run.inbox.length;
  }

  // ---------- opening ----------

  /** Marks a phase's start; the returned callback records its duration at the moment it settles. */
  private phase(name: 'dns_ms' | 'tcp_connect_ms' | 'tls_handshake_ms'): () => void {
    const startMs = now();
    return () => {
      this.timings[name] ??= this.since(startMs);
    };
  }

  private async open(): Promise<void> {
    const d = this.definition;
    // A phase that was attempted keeps its duration even when it failed: "refused after 0.2 ms".
    const address =
      d.literalAddress ??
      (await resolveHost(d.host, d.config.ip_version, this.deadline, d.lookup, this.phase('dns_ms')));
    this.remote = { address: address.address, port: d.port, family: address.family };

    let socket: Socket = await connectTcp(address, d.port, this.deadline, this.phase('tcp_connect_ms'));
    this.socket = socket;

    if (d.secure) {
      const secured = await startTls(
        socket,
        {
          serverName: d.serverName,
          identity: d.identity,
          secureContext: d.tlsContext(),
          skipVerify: d.config.tls?.skip_verify ?? false,
        },
        this.deadline,
        this.phase('tls_handshake_ms'),
      );
      socket = secured.socket;
      this.tls = secured.details;
      this.socket = socket;
    }
    await this.upgradeConnection(socket);
    const connect = d.steps[0];
    const openMs = this.timings.open_ms ?? 0;
    if (connect?.type === 'connect') {
      const tooSlow = connect.within_ms !== undefined && openMs > connect.within_ms;
      this.stepResults.push({
        index: 0,
        type: 'connect',
        passed: !tooSlow,
        duration_ms: openMs,
        ...(tooSlow ? { detail: `opened in ${openMs} ms, allowed ${connect.within_ms} ms` } : {}),
      });
      if (tooSlow) {
        throw fail(
          'assertion_failed',
          'connect_too_slow',
          `connected in ${openMs} ms, more than the ${connect.within_ms} ms the connect step allows`,
          undefined,
          0,
        );
      }
    }
  }

  private async upgradeConnection(socket: Socket): Promise<void> {
    const d = this.definition;
    const upgradeStart = now();
    const ws = new WebSocket(d.wsUrl, [...d.protocols], {
      createConnection: () => socket,
      headers: d.headers,
      ...(d.config.origin === undefined ? {} : { origin: d.config.origin }),
      maxPayload: MAX_PAYLOAD_BYTES,
      followRedirects: false,
    });
    this.ws = ws;
    // ws re-emits socket errors after its own handling; they are read through 'close'.
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.inbox.push({ data, binary: isBinary, atMs: now() });
      this.wake?.();
    });
    ws.on('pong', (data: Buffer) => {
      this.pongs.push({ payload: data.toString('latin1'), atMs: now() });
      this.wake?.();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      const atMs = now();
      this.wsClosed = true;
      // A connection that never opened has no close handshake to report.
      if (this.timings.open_ms !== null) {
        const initiator = this.clientClosed ? 'client' : code === 1006 ? 'none' : 'server';
        this.close = { code, reason: reason.toString(), initiator, clean: code !== 1006, atMs };
      }
      this.wake?.();
    });

    // The 101's headers are read after 'open': their processing must not count as handshake time.
    let switching: IncomingMessage | undefined;
    const outcome = await waitFor<'open' | IncomingMessage>(this.deadline, (resolve, reject) => {
      const onUpgrade = (res: IncomingMessage) => {
        this.timings.upgrade_ms = this.since(upgradeStart);
        switching = res;
      };
      const onOpen = () => {
        this.timings.open_ms = this.since(this.startedAtMs);
        resolve('open');
      };
      const onUnexpected = (_req: unknown, res: IncomingMessage) => {
        this.timings.upgrade_ms = this.since(upgradeStart);
        resolve(res);
      };
      const onClose = () =>
        reject(fail('ws_open_failed', 'connection_reset', 'the connection closed during the upgrade'));
      ws.on('upgrade', onUpgrade);
      ws.once('open', onOpen);
      ws.once('unexpected-response', onUnexpected);
      ws.once('error', reject);
      ws.once('close', onClose);
      return () => {
        this.timings.upgrade_ms ??= this.since(upgradeStart);
        ws.off('upgrade', onUpgrade);
        ws.off('open', onOpen);
        ws.off('unexpected-response', onUnexpected);
        ws.off('error', reject);
        ws.off('close', onClose);
      };
    })
      .catch((error: unknown) => {
        throw error instanceof ProbeFailureError ? error : classifyUpgradeError(error);
      })
      .finally(() => {
        if (switching) this.recordUpgrade(switching);
      });

    if (outcome === TIMED_OUT) {
      throw fail(
        'ws_handshake_timeout',
        'upgrade_timeout',
        'no response to the WebSocket upgrade within the deadline',
      );
    }
    if (outcome !== 'open') {
      this.recordUpgrade(outcome);
      const body = await readBodyPreview(outcome, this.limit(BODY_READ_GRACE_MS));
      this.upgrade = {
        ...this.upgrade!,
        body_preview: this.definition.scrubber.scrub(body.text),
        body_truncated: body.truncated,
      };
      const status = `${outcome.statusCode ?? 0} ${outcome.statusMessage ?? ''}`.trim();
      throw fail(
        'ws_open_failed',
        'http_unexpected_status',
        `the server answered the upgrade with HTTP ${status} instead of 101 Switching Protocols`,
        `HTTP_${outcome.statusCode ?? 0}`,
      );
    }
  }

  private recordUpgrade(res: IncomingMessage): void {
    const scrubber = this.definition.scrubber;
    const raw: Record<string, string> = {};
    const shown: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue;
      const joined = Array.isArray(value) ? value.join(', ') : value;
      raw[name] = joined;
      if (name === 'set-cookie') {
        // Session cookies a server sets are credentials too: kept by name only.
        const cookies = Array.isArray(value) ? value : [value];
        shown[name] = cookies.map((c) => `${c.split('=')[0]}=${REDACTED}`).join(', ');
      } else {
        shown[name] = scrubber.isEmpty ? joined : scrubber.scrub(joined);
      }
    }
    this.rawHeaders = raw;
    this.upgrade = {
      status_code: res.statusCode ?? 0,
      status_message: res.statusMessage ?? '',
      headers: shown,
    };
  }

  // ---------- steps ----------

  private async runSteps(): Promise<void> {
    const steps = this.definition.steps;
    for (let index = 0; index < steps.length; index++) {
      const step = steps[index]!;
      if (step.type === 'connect') continue;
      if (step.type !== 'disconnect') this.failIfClosed(index, step.type);
      const stepStart = now();
      try {
        const detail = await this.runStep(step, index);
        this.stepResults.push({
          index,
          type: step.type,
          passed: true,
          duration_ms: this.since(stepStart),
          ...detail,
        });
      } catch (error) {
        const failure = error instanceof ProbeFailureError ? error : unexpected(error);
        this.stepResults.push({
          index,
          type: step.type,
          passed: false,
          duration_ms: this.since(stepStart),
          detail: this.definition.scrubber.scrub(failure.message),
        });
        throw failure.step === undefined
          ? new ProbeFailureError(
              failure.reason,
              failure.failureCause,
              failure.message,
              failure.errorCode,
              index,
            )
          : failure;
      }
    }
  }

  private runStep(step: Step, index: number): Promise<Partial<StepResult>> | Partial<StepResult> {
    switch (step.type) {
      case 'connect':
        return {};
      case 'send':
        this.lastSendMs = now();
        this.ws!.send(step.message);
        this.messagesSent++;
        return {};
      case 'receive':
        return this.receive(step, index);
      case 'ping':
        return this.ping(step);
      case 'hold':
        return this.hold(step);
      case 'disconnect':
        return this.disconnect(step);
    }
  }

  private failIfClosed(index: number, doing: string): void {
    if (this.close) throw this.closedEarly(`before the ${doing} step`, index);
  }

  private closedEarly(when: string, index?: number): ProbeFailureError {
    const close = this.close!;
    const meaning = this.definition.profile?.closeFailure?.(close);
    if (meaning) {
      return index === undefined
        ? meaning
        : new ProbeFailureError(
            meaning.reason,
            meaning.failureCause,
            meaning.message,
            meaning.errorCode,
            index,
          );
    }
    const cause = close.code === 1006 ? 'abnormal_closure' : 'closed_by_server';
    const how =
      close.code === 1006
        ? 'the connection was dropped without a close frame (1006)'
        : `the server closed the connection with ${close.code}${close.reason ? ` (${close.reason})` : ''}`;
    return fail('ws_closed_early', cause, `${how} ${when}`, `CLOSE_${close.code}`, index);
  }

  /** Sleeps until something arrives (message, pong, close) or the time is up. */
  private async nextEvent(limit: Deadline | number): Promise<boolean> {
    const outcome = await waitFor<true>(limit, (resolve) => {
      this.wake = () => resolve(true);
      return () => {
        this.wake = null;
      };
    });
    return outcome !== TIMED_OUT;
  }

  private async receive(step: ReceiveStep, index: number): Promise<Partial<StepResult>> {
    const waitStartMs = now();
    const endMs = waitStartMs + this.remaining(step.timeout_ms);
    const regexes = this.definition.regexes;
    for (;;) {
      const message = this.inbox[this.cursor];
      if (message) {
        this.cursor++;
        const text = messageText(message);
        if (step.expect_message && !text.includes(step.expect_message)) {
          if (step.skip_non_matching) continue;
          this.matched = message;
          throw fail(
            'ws_reply_mismatch',
            'assertion',
            `the reply does not contain the expected text ${JSON.stringify(step.expect_message)}`,
          );
        }
        this.matched = message;
        const roundTrip = this.lastSendMs === null ? undefined : roundMs(message.atMs - this.lastSendMs);
        if (roundTrip !== undefined) {
          this.timings.round_trip_ms ??= roundTrip;
          this.lastSendMs = null;
        }
        const results = step.assertions.map((a) => evaluateMessageAssertion(a, text, regexes, index));
        this.stepAssertions.push(...results);
        const failed = results.find((r) => !r.passed);
        if (failed) throw fail('assertion_failed', 'assertion', failed.message);
        return { messages_received: 1, ...(roundTrip === undefined ? {} : { round_trip_ms: roundTrip }) };
      }
      if (this.close) throw this.closedEarly('before the awaited reply', index);
      if (!(await this.nextEvent(this.limitUntil(endMs)))) {
        if (this.inbox[this.cursor]) continue;
        throw fail(
          'ws_reply_timeout',
          'reply_timeout',
          `no reply within ${Math.round(now() - waitStartMs)} ms`,
        );
      }
    }
  }

  private async ping(step: PingStep): Promise<Partial<StepResult>> {
    const payload = step.payload ?? randomBytes(8).toString('hex');
    const sentMs = now();
    const endMs = sentMs + this.remaining(step.timeout_ms);
    const first = this.pongs.length;
    this.ws!.ping(payload);
    for (;;) {
      const pong = this.pongs.slice(first).find((p) => p.payload === Buffer.from(payload).toString('latin1'));
      if (pong) {
        const pingMs = roundMs(pong.atMs - sentMs);
        this.timings.ping_ms ??= pingMs;
        return { round_trip_ms: pingMs, pongs_received: 1 };
      }
      if (this.close) throw this.closedEarly('before the pong');
      if (!(await this.nextEvent(this.limitUntil(endMs)))) {
        if (this.pongs.length > first) continue;
        throw fail('ws_reply_timeout', 'pong_timeout', 'no pong answered the protocol ping in time');
      }
    }
  }

  private async hold(step: HoldStep): Promise<Partial<StepResult>> {
    const startMs = now();
    const endMs = startMs + this.remaining(step.duration_ms);
    const cutShort = endMs < startMs + step.duration_ms;
    const messagesBefore = this.inbox.length;
    const pongsBefore = this.pongs.length;
    const intervalMs =
      step.ping_interval_ms ?? (step.min_pongs > 0 ? DEFAULT_HOLD_PING_INTERVAL_MS : undefined);
    let nextPingMs = intervalMs === undefined ? Infinity : startMs;
    for (;;) {
      if (this.close) throw this.closedEarly('while holding the connection');
      const at = now();
      if (at >= endMs) break;
      if (at >= nextPingMs) {
        this.ws!.ping(randomBytes(4));
        nextPingMs = at + intervalMs!;
      }
      await this.nextEvent(this.limitUntil(Math.min(endMs, nextPingMs)));
    }
    const messages = this.inbox.length - messagesBefore;
    const pongs = this.pongs.length - pongsBefore;
    if (messages > 0) this.matched = this.inbox[this.inbox.length - 1]!;
    this.cursor = this.inbox.length;
    const heldMs = roundMs(now() - startMs);
    if (messages < step.min_messages) {
      throw fail(
        'ws_reply_timeout',
        'hold_too_few_messages',
        `${messages} messages in ${heldMs} ms, at least ${step.min_messages} expected: the connection went silent`,
      );
    }
    if (pongs < step.min_pongs) {
      throw fail(
        'ws_reply_timeout',
        'hold_too_few_pongs',
        `${pongs} pongs in ${heldMs} ms, at least ${step.min_pongs} expected: the connection went silent`,
      );
    }
    if (cutShort) {
      throw fail('ws_reply_timeout', 'reply_timeout', `the probe deadline ended the hold after ${heldMs} ms`);
    }
    return { messages_received: messages, pongs_received: pongs };
  }

  private async disconnect(step: DisconnectStep): Promise<Partial<StepResult>> {
    const waitMs = this.remaining(step.timeout_ms);
    const limit = this.limit(step.timeout_ms);
    if (step.initiator === 'client' && !this.close) {
      this.clientClosed = true;
      this.closeStartedMs = now();
      this.ws!.close(step.code, step.reason);
    }
    const closed = this.close ? true : await this.waitForClose(limit);
    if (!closed) {
      const who =
        step.initiator === 'client'
          ? 'the server did not answer the close frame'
          : 'the server did not close';
      throw fail('ws_reply_timeout', 'close_timeout', `${who} within ${roundMs(waitMs)} ms`);
    }
    const code = this.close!.code;
    if (step.expected_close_code !== undefined && code !== step.expected_close_code) {
      throw fail(
        'assertion_failed',
        'unexpected_close_code',
        `close code ${code} versus expected ${step.expected_close_code}`,
        `CLOSE_${code}`,
      );
    }
    return { close_code: code };
  }

  private async waitForClose(limit: Deadline | number): Promise<boolean> {
    if (limit instanceof Deadline) {
      while (!this.wsClosed) if (!(await this.nextEvent(limit))) break;
      return this.wsClosed;
    }
    const endMs = now() + limit;
    while (!this.wsClosed) if (!(await this.nextEvent(endMs - now()))) break;
    return this.wsClosed;
  }

  // ---------- closing ----------

  /** Every path ends here: the connection closed (1000 where open), nothing left behind. */
  private async finishConnection(): Promise<void> {
    const ws = this.ws;
    if (ws && !this.close && ws.readyState === WebSocket.OPEN) {
      this.clientClosed = true;
      this.closeStartedMs = now();
      ws.close(1000);
      await this.waitForClose(this.limit(IMPLICIT_CLOSE_GRACE_MS));
    }
    if (this.close && this.closeStartedMs !== null && this.close.initiator === 'client') {
      this.timings.close_ms = roundMs(this.close.atMs - this.closeStartedMs);
    }
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.terminate();
    if (this.socket) await destroySocket(this.socket);
    if (ws && !this.wsClosed) await this.waitForClose(IMPLICIT_CLOSE_GRACE_MS);
  }

  // ---------- the verdict ----------

  private buildResult(failure: ProbeFailureError | null): ProbeResult {
    const d = this.definition;
    const config = d.config;
    const totalMs = this.since(this.startedAtMs);
    const tls = this.tls ?? failure?.tls ?? null;
    const message = this.matched ?? this.inbox[this.inbox.length - 1] ?? null;
    const roundTripMs = this.timings.round_trip_ms ?? this.timings.ping_ms;
    const assertions = config.assertions.map((a) =>
      evaluateAssertion(
        a,
        {
          connectMs: this.timings.open_ms,
          roundTripMs,
          totalMs,
          message: message ? messageText(message) : null,
          headers: this.rawHeaders,
          closeCode: this.close?.code ?? null,
          subprotocol: this.ws?.protocol || null,
          certificateDaysRemaining: tls?.certificate?.days_remaining ?? null,
        },
        d.regexes,
      ),
    );
    const allAssertions = [...this.stepAssertions, ...assertions];
    const failedAssertion = assertions.find((a) => !a.passed);
    const verdict =
      failure ?? (failedAssertion ? fail('assertion_failed', 'assertion', failedAssertion.message) : null);

    const opened = this.timings.open_ms !== null;
    const value =
      config.interpretation === 'connection_success'
        ? opened
          ? 1
          : 0
        : config.interpretation === 'handshake_latency'
          ? this.timings.open_ms
          : roundTripMs;
    const scrub = d.scrubber.scrub;
    return {
      success: verdict === null,
      interpretation: config.interpretation,
      value,
      failure: verdict ? verdict.toFailure(scrub) : null,
      started_at: this.startedAt.toISOString(),
      url: d.displayUrl,
      timings: { ...this.timings, total_ms: totalMs },
      connection: {
        remote_address: this.remote?.address ?? null,
        remote_port: this.remote?.port ?? null,
        ip_family: this.remote?.family ?? null,
      },
      upgrade: this.upgrade,
      subprotocol: opened ? this.ws?.protocol || null : null,
      extensions: opened ? this.ws?.extensions || null : null,
      tls,
      close: this.close
        ? {
            code: this.close.code,
            reason: scrub(this.close.reason),
            initiator: this.close.initiator,
            clean: this.close.clean,
          }
        : null,
      messages_sent: this.messagesSent + this.extraMessagesSent,
      messages_received: this.inbox.length + this.extraMessagesReceived,
      last_message: message ? previewMessage(message, scrub) : null,
      steps: this.stepResults,
      assertions: d.scrubber.isEmpty
        ? allAssertions
        : allAssertions.map((a) =>
            typeof a.actual === 'string' ? { ...a, actual: scrub(a.actual), message: scrub(a.message) } : a,
          ),
      ...(d.profile ? { profile: this.profileResult(d.profile, scrub) } : {}),
    };
  }

  private profileResult(profile: ProfileDriver, scrub: (s: string) => string): ProbeResult['profile'] {
    const facts: Record<string, ProfileFact> = {};
    for (const [name, value] of Object.entries(this.profileFacts)) {
      facts[name] =
        typeof value === 'string'
          ? scrub(value)
          : Array.isArray(value)
            ? value.map((v: string | number) => (typeof v === 'string' ? scrub(v) : v))
            : value;
    }
    return {
      name: profile.name,
      phases: this.profilePhases.map((p) => (p.detail === undefined ? p : { ...p, detail: scrub(p.detail) })),
      facts,
    };
  }
}

function unexpected(error: unknown): ProbeFailureError {
  return fail('ws_open_failed', 'network_error', (error as Error | null)?.message ?? String(error));
}

/** Text to match against: binary frames are matched on their UTF-8 decoding (JSON is often sent binary). */
function messageText(message: Inbound): string {
  return message.data.toString('utf8');
}

function previewMessage(message: Inbound, scrub: (s: string) => string): ReceivedMessage {
  const truncated = message.data.length > MESSAGE_PREVIEW_BYTES;
  const head = truncated ? message.data.subarray(0, MESSAGE_PREVIEW_BYTES) : message.data;
  return {
    data: scrub(message.binary ? head.toString('base64') : head.toString('utf8')),
    binary: message.binary,
    size_bytes: message.data.length,
    truncated,
  };
}

async function readBodyPreview(
  res: IncomingMessage,
  limit: Deadline | number,
): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  await waitFor<true>(limit, (resolve) => {
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= BODY_PREVIEW_BYTES) {
        truncated = size > BODY_PREVIEW_BYTES || !res.complete;
        resolve(true);
      }
    };
    const onEnd = () => resolve(true);
    res.on('data', onData);
    res.once('end', onEnd);
    res.once('error', onEnd);
    res.once('close', onEnd);
    return () => {
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('error', onEnd);
      res.off('close', onEnd);
    };
  });
  const body = Buffer.concat(chunks);
  return {
    text: body.subarray(0, BODY_PREVIEW_BYTES).toString('utf8'),
    truncated: truncated || body.length > BODY_PREVIEW_BYTES,
  };
}

/** The result of a configuration that did not validate: nothing was attempted. */
export function invalidConfigResult(input: unknown, errors: readonly ConfigFieldError[]): ProbeResult {
  const rawUrl = (input as { url?: unknown } | null)?.url;
  let url = '';
  try {
    url = typeof rawUrl === 'string' ? displayUrl(rawUrl) : '';
  } catch {
    url = '';
  }
  const interpretationInput = (input as { interpretation?: unknown } | null)?.interpretation;
  const interpretation =
    interpretationInput === 'round_trip_latency' || interpretationInput === 'connection_success'
      ? interpretationInput
      : 'handshake_latency';
  return {
    success: false,
    interpretation,
    value: interpretation === 'connection_success' ? 0 : null,
    failure: {
      reason: 'invalid_config',
      cause: 'invalid_config',
      category: 'INVALID_REQUEST',
      message: errors.map((e) => e.message).join('; '),
    },
    started_at: new Date().toISOString(),
    url,
    timings: emptyProbeTimings(),
    connection: { remote_address: null, remote_port: null, ip_family: null },
    upgrade: null,
    subprotocol: null,
    extensions: null,
    tls: null,
    close: null,
    messages_sent: 0,
    messages_received: 0,
    last_message: null,
    steps: [],
    assertions: [],
    config_errors: errors,
  };
}
