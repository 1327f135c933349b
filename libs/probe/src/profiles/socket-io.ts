import { socketIoOptionsSchema, type ProbeConfig, type SocketIoOptions } from '@wsmon/contracts';
import { fail } from '../failure';
import { sensitiveLeaves } from '../secrets';
import { now } from '../wait';
import {
  elapsed,
  jsonObject,
  quote,
  text,
  timedOut,
  type Inbound,
  type ProfileCompiler,
  type ProfileSession,
} from './profile';

/**
 * Socket.IO v4 on Engine.IO v4, WebSocket transport only. Phases: `open` (until the Engine.IO open
 * packet), `namespace_connect` (until CONNECT or CONNECT_ERROR), `emit` (until the ack), `event`
 * (until the named event), `hold` (answering the server's pings).
 */
export const compileSocketIo: ProfileCompiler = (config) => {
  const options = config.socket_io ?? socketIoOptionsSchema.parse({});
  return {
    name: 'socket_io',
    url: engineIoUrl(config, options),
    secrets: sensitiveLeaves(options.auth, true),
    run: (session) => new SocketIoConversation(session, options).run(),
  };
};

export const DEFAULT_SOCKET_IO_PATH = '/socket.io/';

/** The URL with the Engine.IO path and `EIO=4&transport=websocket`; other query parameters are kept. */
export function engineIoUrl(
  config: Pick<ProbeConfig, 'url'>,
  options: Pick<SocketIoOptions, 'path'>,
): string {
  const url = new URL(config.url);
  url.pathname = options.path ?? (url.pathname !== '/' ? url.pathname : DEFAULT_SOCKET_IO_PATH);
  url.searchParams.set('EIO', '4');
  url.searchParams.set('transport', 'websocket');
  return url.toString();
}

/** Engine.IO v4 packet types (the first character of each frame). */
const ENGINE = { open: '0', close: '1', ping: '2', pong: '3', message: '4', noop: '6' } as const;
/** Socket.IO v5 packet types (the first character after the Engine.IO message type). */
const SOCKET = { connect: 0, disconnect: 1, event: 2, ack: 3, connectError: 4 } as const;

interface SocketPacket {
  readonly type: number;
  readonly nsp: string;
  readonly id: number | undefined;
  readonly data: unknown;
}

/** `<type>[<attachments>-][<nsp>,][<id>][<json>]`; undefined when it is not a Socket.IO packet. */
export function parseSocketPacket(raw: string): SocketPacket | undefined {
  const type = Number(raw[0]);
  if (!Number.isInteger(type) || type < 0 || type > 6) return undefined;
  let i = 1;
  if (type === 5 || type === 6) {
    const dash = raw.indexOf('-', i);
    if (dash === -1) return undefined;
    i = dash + 1;
  }
  let nsp = '/';
  if (raw[i] === '/') {
    const comma = raw.indexOf(',', i);
    nsp = comma === -1 ? raw.slice(i) : raw.slice(i, comma);
    i = comma === -1 ? raw.length : comma + 1;
  }
  const digits = /^\d+/.exec(raw.slice(i));
  const id = digits ? Number(digits[0]) : undefined;
  if (digits) i += digits[0].length;
  const rest = raw.slice(i);
  let data: unknown;
  if (rest) {
    try {
      data = JSON.parse(rest);
    } catch {
      return undefined;
    }
  }
  return { type, nsp, id, data };
}

function encodeSocketPacket(type: number, nsp: string, id: number | undefined, data?: unknown): string {
  const namespace = nsp === '/' ? '' : `${nsp},`;
  return `${ENGINE.message}${type}${namespace}${id ?? ''}${data === undefined ? '' : JSON.stringify(data)}`;
}

class SocketIoConversation {
  private pingIntervalMs = 0;
  private pingTimeoutMs = 0;
  private lastPingMs = 0;
  private pingsAnswered = 0;
  private connected = false;
  private nextAckId = 1;

  constructor(
    private readonly session: ProfileSession,
    private readonly options: SocketIoOptions,
  ) {}

  async run(): Promise<void> {
    const session = this.session;
    const options = this.options;
    session.fact('namespace', options.namespace);
    const connectEndMs = session.endAfter(options.connect_timeout_ms);
    try {
      await session.phase('open', () => this.open(connectEndMs));
      let roundTripMs = await session.phase('namespace_connect', () => this.connect(connectEndMs));
      let emittedMs: number | undefined;
      if (options.emit) {
        const emit = options.emit;
        emittedMs = now();
        const ackMs = await session.phase('emit', () => this.emit(emit));
        if (ackMs !== undefined) roundTripMs = ackMs;
      }
      if (options.expect_event) {
        const expected = options.expect_event;
        const eventAtMs = await session.phase('event', () => this.awaitEvent(expected));
        if (options.emit && !options.emit.ack && emittedMs !== undefined) {
          roundTripMs = elapsed(emittedMs, eventAtMs);
        }
      }
      session.roundTrip(roundTripMs);
      if (options.hold_ms !== undefined) {
        const holdMs = options.hold_ms;
        await session.phase('hold', () => this.hold(holdMs));
      }
      // A client leaving a namespace says so; the engine then closes the WebSocket with 1000.
      session.send(encodeSocketPacket(SOCKET.disconnect, options.namespace, undefined));
    } finally {
      session.fact('pings_answered', this.pingsAnswered);
    }
  }

  /**
   * The next Socket.IO packet of the namespace; answers Engine.IO pings on the way, and fails when
   * the server closes the session. Null when the time ran out.
   */
  private async read(endMs: number): Promise<{ packet: SocketPacket; message: Inbound } | null> {
    for (;;) {
      const message = await this.session.next(endMs);
      if (!message) return null;
      const raw = text(message);
      const kind = raw[0];
      if (kind === ENGINE.ping) {
        this.lastPingMs = message.atMs;
        this.pingsAnswered++;
        this.session.send(ENGINE.pong + raw.slice(1));
        continue;
      }
      if (kind === ENGINE.noop || kind === ENGINE.pong) continue;
      if (kind === ENGINE.close) {
        throw fail('protocol_error', 'socketio_disconnected', 'the server closed the Engine.IO session');
      }
      const packet = kind === ENGINE.message ? parseSocketPacket(raw.slice(1)) : undefined;
      if (!packet) {
        throw fail(
          'protocol_error',
          'socketio_invalid_packet',
          `the server sent a frame that is not an Engine.IO v4 / Socket.IO v5 packet: ${quote(raw)}`,
        );
      }
      if (packet.nsp !== this.options.namespace) continue;
      if (packet.type === SOCKET.disconnect && this.connected) {
        throw fail(
          'protocol_error',
          'socketio_disconnected',
          `the server disconnected the probe from namespace ${this.options.namespace}`,
        );
      }
      return { packet, message };
    }
  }

  private async open(endMs: number): Promise<void> {
    const startMs = now();
    const message = await this.session.next(endMs);
    if (!message) throw timedOut('socketio_open_timeout', 'no Engine.IO open packet', startMs);
    const raw = text(message);
    const open = raw[0] === ENGINE.open ? jsonObject(raw.slice(1)) : undefined;
    const { sid, pingInterval, pingTimeout } = open ?? {};
    if (typeof sid !== 'string' || typeof pingInterval !== 'number' || typeof pingTimeout !== 'number') {
      throw fail(
        'protocol_error',
        'socketio_invalid_packet',
        `expected the Engine.IO v4 open packet (0{"sid":…,"pingInterval":…,"pingTimeout":…}), got ${quote(raw)}`,
      );
    }
    this.pingIntervalMs = pingInterval;
    this.pingTimeoutMs = pingTimeout;
    this.lastPingMs = message.atMs;
    this.session.fact('sid', sid);
    this.session.fact('ping_interval_ms', pingInterval);
    this.session.fact('ping_timeout_ms', pingTimeout);
  }

  private async connect(endMs: number): Promise<number> {
    const nsp = this.options.namespace;
    const startMs = now();
    this.session.send(encodeSocketPacket(SOCKET.connect, nsp, undefined, this.options.auth));
    for (;;) {
      const got = await this.read(endMs);
      if (!got)
        throw timedOut('socketio_connect_timeout', `no answer to the CONNECT of namespace ${nsp}`, startMs);
      const { packet, message } = got;
      if (packet.type === SOCKET.connect) {
        const socketId = (packet.data as { sid?: unknown } | undefined)?.sid;
        if (typeof socketId === 'string') this.session.fact('socket_id', socketId);
        this.connected = true;
        return elapsed(startMs, message.atMs);
      }
      if (packet.type === SOCKET.connectError) {
        const error = packet.data as { message?: unknown; data?: unknown } | undefined;
        const said = typeof error?.message === 'string' ? error.message : JSON.stringify(packet.data ?? null);
        this.session.fact('connect_error', said);
        if (error?.data !== undefined) this.session.fact('connect_error_data', JSON.stringify(error.data));
        throw fail(
          'protocol_error',
          'socketio_connect_error',
          `the server refused the connection to namespace ${nsp}: ${quote(said)}`,
        );
      }
    }
  }

  /** Emits the event; with ack, returns the emit-to-ack round trip. */
  private async emit(emit: NonNullable<SocketIoOptions['emit']>): Promise<number | undefined> {
    const nsp = this.options.namespace;
    const id = emit.ack ? this.nextAckId++ : undefined;
    const startMs = now();
    this.session.send(encodeSocketPacket(SOCKET.event, nsp, id, [emit.event, ...emit.args]));
    if (id === undefined) return undefined;
    const endMs = this.session.endAfter(emit.timeout_ms);
    for (;;) {
      const got = await this.read(endMs);
      if (!got) throw timedOut('socketio_ack_timeout', `no acknowledgement of ${quote(emit.event)}`, startMs);
      const { packet, message } = got;
      if (packet.type === SOCKET.ack && packet.id === id) {
        this.session.subject(JSON.stringify(packet.data ?? []), message.atMs);
        const ackMs = elapsed(startMs, message.atMs);
        this.session.fact('ack_ms', ackMs);
        return ackMs;
      }
    }
  }

  /** Awaits the named event; returns when it arrived. */
  private async awaitEvent(expected: NonNullable<SocketIoOptions['expect_event']>): Promise<number> {
    const startMs = now();
    const endMs = this.session.endAfter(expected.timeout_ms);
    for (;;) {
      const got = await this.read(endMs);
      if (!got) throw timedOut('socketio_event_timeout', `no ${quote(expected.event)} event`, startMs);
      const { packet, message } = got;
      if (packet.type !== SOCKET.event || !Array.isArray(packet.data) || packet.data[0] !== expected.event) {
        continue;
      }
      // An event asking for an acknowledgement gets an empty one, as a client without a handler answers.
      if (packet.id !== undefined) {
        this.session.send(encodeSocketPacket(SOCKET.ack, this.options.namespace, packet.id, []));
      }
      this.session.subject(JSON.stringify(packet.data.slice(1)), message.atMs);
      this.session.fact('event_ms', elapsed(startMs, message.atMs));
      return message.atMs;
    }
  }

  /** Stays connected answering pings; a silence longer than pingInterval + pingTimeout is a failure. */
  private async hold(holdMs: number): Promise<void> {
    const endMs = this.session.endAfter(holdMs);
    const cutShort = endMs < now() + holdMs - 1;
    const allowedMs = this.pingIntervalMs + this.pingTimeoutMs;
    for (;;) {
      const pingDueMs = this.lastPingMs + allowedMs;
      const waitUntilMs = Math.min(endMs, pingDueMs);
      await this.read(waitUntilMs);
      const at = now();
      if (at >= this.lastPingMs + allowedMs) {
        throw fail(
          'ws_reply_timeout',
          'socketio_ping_timeout',
          `no ping from the server for ${Math.round(at - this.lastPingMs)} ms, more than pingInterval + pingTimeout (${allowedMs} ms): the connection went silent`,
        );
      }
      if (at >= endMs) break;
    }
    if (cutShort) {
      throw fail('ws_reply_timeout', 'reply_timeout', 'the probe deadline ended the hold before its end');
    }
  }
}
