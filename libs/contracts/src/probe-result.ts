import type { ConfigFieldError } from './config-errors';
import type { AssertionType, Interpretation, ProbeProfile, StepType } from './probe-config.schema';

/**
 * Why a probe failed: the reason codes of seed 001 plus `assertion_failed`, `invalid_config` and
 * `protocol_error` (the WebSocket opened, but the protocol of a profile refused or broke the session).
 */
export const REASON_CODES = [
  'ws_open_failed',
  'ws_handshake_timeout',
  'ws_reply_timeout',
  'ws_closed_early',
  'ws_reply_mismatch',
  'assertion_failed',
  'invalid_config',
  'protocol_error',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

/** The finer cause of a failure, where one is known. */
export const FAILURE_CAUSES = [
  'dns_not_found',
  'dns_failure',
  'connection_refused',
  'connection_reset',
  'host_unreachable',
  'network_error',
  'tls_cert_expired',
  'tls_cert_not_yet_valid',
  'tls_self_signed',
  'tls_unknown_ca',
  'tls_hostname_mismatch',
  'tls_handshake_failed',
  'http_unexpected_status',
  'invalid_upgrade_response',
  'subprotocol_mismatch',
  'dns_timeout',
  'tcp_connect_timeout',
  'tls_handshake_timeout',
  'upgrade_timeout',
  'reply_timeout',
  'pong_timeout',
  'hold_too_few_messages',
  'hold_too_few_pongs',
  'close_timeout',
  'closed_by_server',
  'abnormal_closure',
  'unexpected_close_code',
  'connect_too_slow',
  'assertion',
  'invalid_config',
  // Protocol profiles: each cause names its protocol.
  'graphql_invalid_message',
  'graphql_unauthorized',
  'graphql_forbidden',
  'graphql_init_timeout',
  'graphql_duplicate_id',
  'graphql_too_many_inits',
  'graphql_connection_error',
  'graphql_ack_timeout',
  'graphql_error',
  'graphql_result_errors',
  'graphql_next_timeout',
  'graphql_completed_early',
  'socketio_invalid_packet',
  'socketio_open_timeout',
  'socketio_connect_error',
  'socketio_connect_timeout',
  'socketio_ack_timeout',
  'socketio_event_timeout',
  'socketio_ping_timeout',
  'socketio_disconnected',
  'stomp_connect_error',
  'stomp_error',
  'stomp_invalid_frame',
  'stomp_connected_timeout',
  'stomp_message_timeout',
  'stomp_receipt_timeout',
  'jsonrpc_error',
  'jsonrpc_invalid_response',
  'jsonrpc_response_timeout',
  'jsonrpc_notification_timeout',
  'jsonrpc_block_not_increasing',
  'jsonrpc_stale_data',
  'sticky_server_id_missing',
  'sticky_session_broken',
] as const;
export type FailureCause = (typeof FAILURE_CAUSES)[number];

/** The failure categories of seed 000, plus ASSERTION for probes that ran but did not satisfy the checks. */
export const FAILURE_CATEGORIES = [
  'DNS',
  'CONNRESET',
  'SSL',
  'TIMEOUT',
  'INVALID_REQUEST',
  'ASSERTION',
] as const;
export type FailureCategory = (typeof FAILURE_CATEGORIES)[number];

const CATEGORY_OF_CAUSE: Record<FailureCause, FailureCategory> = {
  dns_not_found: 'DNS',
  dns_failure: 'DNS',
  connection_refused: 'CONNRESET',
  connection_reset: 'CONNRESET',
  host_unreachable: 'CONNRESET',
  network_error: 'CONNRESET',
  closed_by_server: 'CONNRESET',
  abnormal_closure: 'CONNRESET',
  tls_cert_expired: 'SSL',
  tls_cert_not_yet_valid: 'SSL',
  tls_self_signed: 'SSL',
  tls_unknown_ca: 'SSL',
  tls_hostname_mismatch: 'SSL',
  tls_handshake_failed: 'SSL',
  dns_timeout: 'TIMEOUT',
  tcp_connect_timeout: 'TIMEOUT',
  tls_handshake_timeout: 'TIMEOUT',
  upgrade_timeout: 'TIMEOUT',
  reply_timeout: 'TIMEOUT',
  pong_timeout: 'TIMEOUT',
  close_timeout: 'TIMEOUT',
  // A silent drop: the connection looks alive but nothing arrives in time.
  hold_too_few_messages: 'TIMEOUT',
  hold_too_few_pongs: 'TIMEOUT',
  // The endpoint refused this request as sent: wrong path, missing auth, wrong subprotocol.
  http_unexpected_status: 'INVALID_REQUEST',
  invalid_upgrade_response: 'INVALID_REQUEST',
  subprotocol_mismatch: 'INVALID_REQUEST',
  invalid_config: 'INVALID_REQUEST',
  unexpected_close_code: 'ASSERTION',
  connect_too_slow: 'ASSERTION',
  assertion: 'ASSERTION',
  // A protocol refusing what the probe sent (bad message, credentials, namespace) is a request problem.
  graphql_invalid_message: 'INVALID_REQUEST',
  graphql_unauthorized: 'INVALID_REQUEST',
  graphql_forbidden: 'INVALID_REQUEST',
  graphql_duplicate_id: 'INVALID_REQUEST',
  graphql_too_many_inits: 'INVALID_REQUEST',
  graphql_connection_error: 'INVALID_REQUEST',
  graphql_error: 'INVALID_REQUEST',
  socketio_invalid_packet: 'INVALID_REQUEST',
  socketio_connect_error: 'INVALID_REQUEST',
  stomp_connect_error: 'INVALID_REQUEST',
  stomp_error: 'INVALID_REQUEST',
  stomp_invalid_frame: 'INVALID_REQUEST',
  jsonrpc_error: 'INVALID_REQUEST',
  jsonrpc_invalid_response: 'INVALID_REQUEST',
  // Awaited protocol answers that never came, including the server's own init timeout (4408).
  graphql_init_timeout: 'TIMEOUT',
  graphql_ack_timeout: 'TIMEOUT',
  graphql_next_timeout: 'TIMEOUT',
  socketio_open_timeout: 'TIMEOUT',
  socketio_connect_timeout: 'TIMEOUT',
  socketio_ack_timeout: 'TIMEOUT',
  socketio_event_timeout: 'TIMEOUT',
  socketio_ping_timeout: 'TIMEOUT',
  stomp_connected_timeout: 'TIMEOUT',
  stomp_message_timeout: 'TIMEOUT',
  stomp_receipt_timeout: 'TIMEOUT',
  jsonrpc_response_timeout: 'TIMEOUT',
  jsonrpc_notification_timeout: 'TIMEOUT',
  // The server ended the session at the protocol level.
  socketio_disconnected: 'CONNRESET',
  // The protocol answered, but not with what the probe checks for.
  graphql_result_errors: 'ASSERTION',
  graphql_completed_early: 'ASSERTION',
  jsonrpc_block_not_increasing: 'ASSERTION',
  jsonrpc_stale_data: 'ASSERTION',
  sticky_server_id_missing: 'ASSERTION',
  sticky_session_broken: 'ASSERTION',
};

/** Maps a cause to its seed-000 category. */
export function categoryOf(cause: FailureCause): FailureCategory {
  return CATEGORY_OF_CAUSE[cause];
}

/** Phase durations in milliseconds, measured on a monotonic clock; null where the phase did not happen. */
export interface ProbeTimings {
  readonly dns_ms: number | null;
  readonly tcp_connect_ms: number | null;
  readonly tls_handshake_ms: number | null;
  /** From the upgrade request being written until the 101 (or other) response arrived. */
  readonly upgrade_ms: number | null;
  /** From the probe's start until the WebSocket was open: the handshake latency. */
  readonly open_ms: number | null;
  /** First application message round trip: send until the matching reply. */
  readonly round_trip_ms: number | null;
  /** First protocol ping until its pong. */
  readonly ping_ms: number | null;
  /** Close frame sent (or received) until the TCP connection closed. */
  readonly close_ms: number | null;
  readonly total_ms: number;
}

/** Timings of a probe that measured nothing yet: every phase null, no time spent. */
export function emptyProbeTimings(): ProbeTimings {
  return {
    dns_ms: null,
    tcp_connect_ms: null,
    tls_handshake_ms: null,
    upgrade_ms: null,
    open_ms: null,
    round_trip_ms: null,
    ping_ms: null,
    close_ms: null,
    total_ms: 0,
  };
}

export interface UpgradeResponse {
  readonly status_code: number;
  readonly status_message: string;
  /** Response headers, names lower-cased; values of cookies the server sets are redacted. */
  readonly headers: Readonly<Record<string, string>>;
  /** The first KiB of the body of a non-101 response, where there was one. */
  readonly body_preview?: string;
  readonly body_truncated?: boolean;
}

export interface TlsDetails {
  readonly protocol: string | null;
  readonly cipher: string | null;
  /** Whether the certificate chain and host name were verified. */
  readonly authorized: boolean;
  /** The verification error code when not authorized (kept even when skip_verify accepted it). */
  readonly authorization_error: string | null;
  readonly certificate: {
    readonly subject: string;
    readonly issuer: string;
    readonly subject_alt_names: string | null;
    readonly valid_from: string;
    readonly valid_to: string;
    readonly days_remaining: number;
    readonly serial_number: string;
    readonly fingerprint_sha256: string;
  } | null;
}

export interface CloseInfo {
  /** The close code received, or 1006 when the connection ended without a close frame. */
  readonly code: number;
  readonly reason: string;
  /** Who sent the first close frame; `none` when the TCP connection simply ended. */
  readonly initiator: 'client' | 'server' | 'none';
  /** Whether the close handshake completed (both close frames exchanged). */
  readonly clean: boolean;
}

export interface ReceivedMessage {
  /** UTF-8 text, or base64 for binary frames; truncated to the first 4 KiB. */
  readonly data: string;
  readonly binary: boolean;
  readonly size_bytes: number;
  readonly truncated: boolean;
}

export interface AssertionResult {
  readonly type: AssertionType | 'step';
  readonly operator: string;
  readonly property?: string;
  /** The expected value; `json_path` targets may be any JSON scalar, and `exists` has none (null). */
  readonly target: string | number | boolean | null;
  /**
   * What was measured; null when nothing was there to measure (no message, no certificate, a JSON path
   * that selects nothing). A `json_path` value that is neither a string nor a number is shown as JSON.
   */
  readonly actual: string | number | null;
  readonly passed: boolean;
  /** `actual versus expected`, in words. */
  readonly message: string;
  /** The step index for assertions of a receive step. */
  readonly step?: number;
}

export interface StepResult {
  readonly index: number;
  readonly type: StepType;
  readonly passed: boolean;
  readonly duration_ms: number;
  readonly detail?: string;
  readonly messages_received?: number;
  readonly pongs_received?: number;
  readonly round_trip_ms?: number;
  readonly close_code?: number;
}

/** One phase of a profile's conversation (`connection_init`, `namespace_connect`, `subscribe`, …). */
export interface ProfilePhaseResult {
  readonly name: string;
  readonly passed: boolean;
  /** When the phase started, in ms since the probe's start (monotonic clock). */
  readonly start_ms: number;
  readonly duration_ms: number;
  /** What happened, for a person (why it failed); never contains a secret. */
  readonly detail?: string;
}

/** A value a profile read from the protocol: a server id, a version, a heart-beat, block numbers. */
export type ProfileFact = string | number | boolean | null | readonly (string | number)[];

/** What a protocol profile did: its phases in order and what the protocol said (docs/probe.md). */
export interface ProfileResult {
  readonly name: Exclude<ProbeProfile, 'raw'>;
  readonly phases: readonly ProfilePhaseResult[];
  /** Per profile, documented in docs/probe.md; secrets are scrubbed like everything else. */
  readonly facts: Readonly<Record<string, ProfileFact>>;
}

export interface ProbeFailure {
  readonly reason: ReasonCode;
  readonly cause: FailureCause;
  readonly category: FailureCategory;
  /** What happened, for a person; never contains a secret. */
  readonly message: string;
  /** The underlying error code, such as ECONNREFUSED or CERT_HAS_EXPIRED. */
  readonly error_code?: string;
  readonly step?: number;
}

/** Everything one probe of one endpoint measured and decided. */
export interface ProbeResult {
  /** True when the endpoint met every expectation: opened, answered, passed every assertion. */
  readonly success: boolean;
  readonly interpretation: Interpretation;
  /**
   * The metric value the interpretation asks for: milliseconds for the latencies (null when the
   * probe failed: no data), 1 or 0 for connection_success (never null).
   */
  readonly value: number | null;
  readonly failure: ProbeFailure | null;
  /** Wall-clock start, ISO 8601. Durations never come from the wall clock. */
  readonly started_at: string;
  /** The probed URL with any user:password removed. */
  readonly url: string;
  readonly timings: ProbeTimings;
  readonly connection: {
    readonly remote_address: string | null;
    readonly remote_port: number | null;
    readonly ip_family: 4 | 6 | null;
  };
  readonly upgrade: UpgradeResponse | null;
  readonly subprotocol: string | null;
  readonly extensions: string | null;
  readonly tls: TlsDetails | null;
  readonly close: CloseInfo | null;
  readonly messages_sent: number;
  readonly messages_received: number;
  /** The message the round trip or the last receive step matched, else the last message received. */
  readonly last_message: ReceivedMessage | null;
  readonly steps: readonly StepResult[];
  readonly assertions: readonly AssertionResult[];
  /** Set when a protocol profile ran (left out for `raw`). */
  readonly profile?: ProfileResult;
  /** Set when the configuration was rejected before any connection was attempted. */
  readonly config_errors?: readonly ConfigFieldError[];
}
