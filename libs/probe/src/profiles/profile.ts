import type { CloseInfo, ProbeConfig, ProbeProfile, ProfileFact } from '@wsmon/contracts';
import type { RegexCache } from '../assertions';
import { fail, type ProbeFailureError } from '../failure';
import { now, roundMs } from '../wait';

/** A message as the engine received it. */
export interface Inbound {
  readonly data: Buffer;
  readonly binary: boolean;
  readonly atMs: number;
}

/** One open WebSocket connection, as a profile drives it. */
export interface ProfileConnection {
  /** Sends one text frame (nothing once the connection is closing). */
  send(text: string): void;
  /**
   * The next message not read yet, waiting until `endMs` (monotonic clock, see {@link ProfileSession.endAfter})
   * at most; null when the time ran out. Throws the failure the close means when the connection
   * closes first.
   */
  next(endMs: number): Promise<Inbound | null>;
}

/** What the engine offers a profile: the connection, the clock, and the record of what happened. */
export interface ProfileSession extends ProfileConnection {
  /** The end of a wait of at most `capMs` from now, never later than the probe's deadline. */
  endAfter(capMs?: number): number;
  /** Runs one phase, recording its start, duration and outcome (a thrown failure fails it). */
  phase<T>(name: string, body: () => Promise<T>): Promise<T>;
  /** Records something the protocol said. */
  fact(name: string, value: ProfileFact): void;
  /** The first round trip of the profile, for `round_trip_latency` and `response_time.round_trip`. */
  roundTrip(ms: number): void;
  /** The payload assertions check and `last_message` shows: the profile's answer, without its framing. */
  subject(text: string, atMs: number): void;
  /** Another connection with the same configuration (sticky sessions); always pass it to `release`. */
  connectAgain(): Promise<ProfileConnection>;
  /** Closes a connection from {@link connectAgain} and waits until its handles are released. */
  release(connection: ProfileConnection): Promise<void>;
  /** Closes the probe's own connection now, as the end of the probe would (1000); it reads no more. */
  closeOwn(): Promise<void>;
}

/** A profile compiled from a validated configuration: once per probe definition, not per run. */
export interface ProfileDriver {
  readonly name: Exclude<ProbeProfile, 'raw'>;
  /** The URL to connect to, when the profile changes it (Socket.IO's path and query). */
  readonly url?: string;
  /** Subprotocols offered when the configuration gives none. */
  readonly protocols?: readonly string[];
  /** Values of the profile's options that are credentials: scrubbed from everything recorded. */
  readonly secrets: readonly string[];
  /** The conversation, after the WebSocket opened. */
  run(session: ProfileSession): Promise<void>;
  /** What a close by the server means in this protocol, where it means more than "closed early". */
  closeFailure?(close: CloseInfo): ProbeFailureError | undefined;
}

/** Compiles a profile; `regexes` caches the patterns and JSON paths of the probe definition. */
export type ProfileCompiler = (config: ProbeConfig, regexes: RegexCache) => ProfileDriver;

/** Text of a message; binary frames are decoded as UTF-8 (some servers send JSON as binary). */
export function text(message: Inbound): string {
  return message.data.toString('utf8');
}

/** A JSON object, or undefined for anything else (text that is not JSON, arrays, scalars). */
export function jsonObject(raw: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Milliseconds between two instants of the monotonic clock, rounded like every timing. */
export function elapsed(fromMs: number, toMs: number = now()): number {
  return roundMs(toMs - fromMs);
}

/** At most this much of a server's text goes into a failure message. */
const MAX_QUOTED_CHARS = 300;

/** A server's text, quoted and cut for a failure message. */
export function quote(raw: string): string {
  return JSON.stringify(raw.length > MAX_QUOTED_CHARS ? `${raw.slice(0, MAX_QUOTED_CHARS)}…` : raw);
}

/** A wait of a profile that ran out of time. */
export function timedOut(
  cause: Parameters<typeof fail>[1],
  what: string,
  startMs: number,
): ProbeFailureError {
  return fail('ws_reply_timeout', cause, `${what} within ${Math.round(now() - startMs)} ms`);
}
