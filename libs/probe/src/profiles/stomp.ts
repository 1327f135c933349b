import { stompOptionsSchema, type StompOptions } from '@wsmon/contracts';
import { fail } from '../failure';
import { now } from '../wait';
import { elapsed, quote, text, timedOut, type ProfileCompiler, type ProfileSession } from './profile';

/**
 * STOMP 1.2 over WebSocket. Phases: `connect` (CONNECT until CONNECTED or ERROR), `subscribe` (until a
 * MESSAGE of the subscription), `disconnect` (DISCONNECT until its RECEIPT).
 */
export const compileStomp: ProfileCompiler = (config) => {
  const options = config.stomp ?? stompOptionsSchema.parse({});
  const host = options.host ?? new URL(config.url).hostname.replace(/^\[|\]$/g, '');
  return {
    name: 'stomp',
    secrets: options.passcode === undefined ? [] : [options.passcode],
    run: (session) => new StompConversation(session, options, host).run(),
  };
};

export interface StompFrame {
  readonly command: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const STOMP_VERSION = '1.2';
const SUBSCRIPTION_ID = '0';

/** STOMP 1.2 §2.2 header escaping; CONNECT and CONNECTED frames are not escaped. */
function escapeHeader(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/:/g, '\\c');
}

function unescapeHeader(value: string): string {
  return value.replace(/\\([\\rnc])/g, (_m, c: string) =>
    c === 'r' ? '\r' : c === 'n' ? '\n' : c === 'c' ? ':' : '\\',
  );
}

export function encodeFrame(command: string, headers: Record<string, string>, body = ''): string {
  const escape = command === 'CONNECT' || command === 'STOMP' ? (v: string) => v : escapeHeader;
  const lines = Object.entries(headers).map(([name, value]) => `${escape(name)}:${escape(value)}`);
  return `${command}\n${lines.map((l) => `${l}\n`).join('')}\n${body}\0`;
}

/**
 * Reads STOMP frames from the text of WebSocket messages: a message may hold several frames, a frame
 * may span messages, and bare end-of-lines between frames are heart-beats.
 */
export class StompFrameReader {
  private buffer = '';
  heartBeats = 0;

  push(chunk: string): void {
    this.buffer += chunk;
  }

  /** The next complete frame, undefined when none is complete yet; throws on a malformed one. */
  next(): StompFrame | undefined {
    const start = /^(\r?\n)*/.exec(this.buffer)![0];
    if (start) {
      this.heartBeats += start.split('\n').length - 1;
      this.buffer = this.buffer.slice(start.length);
    }
    const headEnd = this.buffer.search(/\r?\n\r?\n/);
    if (headEnd === -1) return undefined;
    const separator = /\r?\n\r?\n/.exec(this.buffer.slice(headEnd))![0];
    const [command = '', ...headerLines] = this.buffer.slice(0, headEnd).split(/\r?\n/);
    const escaped = command !== 'CONNECTED';
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`malformed header line ${JSON.stringify(line)} in ${command}`);
      const name = escaped ? unescapeHeader(line.slice(0, colon)) : line.slice(0, colon);
      const value = escaped ? unescapeHeader(line.slice(colon + 1)) : line.slice(colon + 1);
      // §2.2: when a header is repeated, only the first occurrence counts.
      if (!Object.hasOwn(headers, name)) headers[name] = value;
    }
    const bodyStart = headEnd + separator.length;
    const length = headers['content-length'];
    let bodyEnd: number;
    if (length !== undefined && /^\d+$/.test(length)) {
      // content-length counts octets: find the character offset that many UTF-8 bytes in.
      const rest = Buffer.from(this.buffer.slice(bodyStart), 'utf8');
      if (rest.length < Number(length) + 1) return undefined;
      if (rest[Number(length)] !== 0)
        throw new Error(`${command} frame is not NUL-terminated after content-length`);
      bodyEnd = bodyStart + rest.subarray(0, Number(length)).toString('utf8').length;
    } else {
      bodyEnd = this.buffer.indexOf('\0', bodyStart);
      if (bodyEnd === -1) return undefined;
    }
    const frame = { command, headers, body: this.buffer.slice(bodyStart, bodyEnd) };
    this.buffer = this.buffer.slice(bodyEnd + 1);
    if (!/^[A-Z]+$/.test(command)) throw new Error(`malformed command ${JSON.stringify(command)}`);
    return frame;
  }
}

class StompConversation {
  private readonly reader = new StompFrameReader();
  private sendHeartBeatMs = 0;
  private lastSentMs = now();
  private nextReceipt = 1;

  constructor(
    private readonly session: ProfileSession,
    private readonly options: StompOptions,
    private readonly host: string,
  ) {}

  async run(): Promise<void> {
    const session = this.session;
    try {
      session.roundTrip(await session.phase('connect', () => this.connect()));
      const subscribe = this.options.subscribe;
      if (subscribe) await session.phase('subscribe', () => this.subscribe(subscribe));
      await session.phase('disconnect', () => this.disconnect());
    } finally {
      session.fact('heart_beats_received', this.reader.heartBeats);
    }
  }

  private send(frame: string): void {
    this.lastSentMs = now();
    this.session.send(frame);
  }

  /** The next frame; sends the heart-beats the probe promised while it waits. Null when the time ran out. */
  private async read(endMs: number): Promise<StompFrame | null> {
    for (;;) {
      let frame: StompFrame | undefined;
      try {
        frame = this.reader.next();
      } catch (error) {
        throw fail(
          'protocol_error',
          'stomp_invalid_frame',
          `the server sent a malformed frame: ${(error as Error).message}`,
        );
      }
      if (frame) return frame;
      const beatDueMs = this.sendHeartBeatMs > 0 ? this.lastSentMs + this.sendHeartBeatMs : Infinity;
      const message = await this.session.next(Math.min(endMs, beatDueMs));
      if (message) {
        this.reader.push(text(message));
        continue;
      }
      if (now() >= endMs) return null;
      this.send('\n');
    }
  }

  private error(frame: StompFrame, cause: 'stomp_connect_error' | 'stomp_error', when: string) {
    const said = frame.headers.message ?? '';
    const body = frame.body.trim();
    this.session.fact('error_message', said);
    return fail(
      'protocol_error',
      cause,
      `the server answered ${when} with ERROR ${quote(said)}${body ? `: ${quote(body)}` : ''}`,
    );
  }

  private async connect(): Promise<number> {
    const options = this.options;
    const { send_ms: sendMs, receive_ms: receiveMs } = options.heart_beat;
    const headers: Record<string, string> = {
      'accept-version': STOMP_VERSION,
      host: this.host,
      ...(options.login === undefined ? {} : { login: options.login }),
      ...(options.passcode === undefined ? {} : { passcode: options.passcode }),
      'heart-beat': `${sendMs},${receiveMs}`,
    };
    const startMs = now();
    this.send(encodeFrame('CONNECT', headers));
    const frame = await this.read(this.session.endAfter(options.connect_timeout_ms));
    if (!frame) throw timedOut('stomp_connected_timeout', 'no CONNECTED', startMs);
    if (frame.command === 'ERROR') throw this.error(frame, 'stomp_connect_error', 'CONNECT');
    if (frame.command !== 'CONNECTED') {
      throw fail(
        'protocol_error',
        'stomp_invalid_frame',
        `expected CONNECTED, the server sent ${frame.command}`,
      );
    }
    const connectedMs = elapsed(startMs);
    const version = frame.headers.version ?? '1.0';
    const heartBeat = frame.headers['heart-beat'] ?? '0,0';
    this.session.fact('version', version);
    this.session.fact('server', frame.headers.server ?? null);
    this.session.fact('heart_beat', heartBeat);
    if (frame.headers.session !== undefined) this.session.fact('session', frame.headers.session);
    if (version !== STOMP_VERSION) {
      throw fail(
        'protocol_error',
        'stomp_invalid_frame',
        `the server negotiated STOMP ${version}; the probe offered only ${STOMP_VERSION}`,
      );
    }
    // §4.4: the client sends every max(cx, sy) ms, where the server asked for beats (sy > 0).
    const serverWants = Number(heartBeat.split(',')[1] ?? 0);
    if (sendMs > 0 && serverWants > 0) this.sendHeartBeatMs = Math.max(sendMs, serverWants);
    return connectedMs;
  }

  private async subscribe(subscribe: NonNullable<StompOptions['subscribe']>): Promise<void> {
    const startMs = now();
    this.send(
      encodeFrame('SUBSCRIBE', { id: SUBSCRIPTION_ID, destination: subscribe.destination, ack: 'auto' }),
    );
    if (subscribe.send !== undefined) {
      const body = subscribe.send;
      this.send(
        encodeFrame(
          'SEND',
          {
            destination: subscribe.destination,
            'content-type': 'text/plain',
            'content-length': String(Buffer.byteLength(body, 'utf8')),
          },
          body,
        ),
      );
    }
    const endMs = this.session.endAfter(subscribe.timeout_ms);
    for (;;) {
      const frame = await this.read(endMs);
      if (!frame)
        throw timedOut('stomp_message_timeout', `no MESSAGE from ${subscribe.destination}`, startMs);
      if (frame.command === 'ERROR')
        throw this.error(frame, 'stomp_error', `SUBSCRIBE to ${subscribe.destination}`);
      if (frame.command === 'MESSAGE' && frame.headers.subscription === SUBSCRIPTION_ID) {
        this.session.subject(frame.body, now());
        this.session.fact('message_ms', elapsed(startMs));
        if (frame.headers['message-id'] !== undefined)
          this.session.fact('message_id', frame.headers['message-id']);
        this.send(encodeFrame('UNSUBSCRIBE', { id: SUBSCRIPTION_ID }));
        return;
      }
    }
  }

  private async disconnect(): Promise<void> {
    const receipt = `disconnect-${this.nextReceipt++}`;
    const startMs = now();
    this.send(encodeFrame('DISCONNECT', { receipt }));
    const endMs = this.session.endAfter(this.options.receipt_timeout_ms);
    for (;;) {
      const frame = await this.read(endMs);
      if (!frame) throw timedOut('stomp_receipt_timeout', 'no RECEIPT for DISCONNECT', startMs);
      if (frame.command === 'ERROR') throw this.error(frame, 'stomp_error', 'DISCONNECT');
      if (frame.command === 'RECEIPT' && frame.headers['receipt-id'] === receipt) {
        this.session.fact('receipt_ms', elapsed(startMs));
        return;
      }
    }
  }
}
