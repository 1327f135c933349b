import { randomUUID } from 'node:crypto';
import type { ProbeResult } from '@wsmon/contracts';
import type { AgentResult } from '@wsmon/proto';

/**
 * A ProbeResult as the engine reports a round trip over TLS (about 1.6 KiB of JSON): the document an
 * agent sends as `result_json`.
 */
export function probeResultDocument(overrides: Partial<ProbeResult> = {}): ProbeResult {
  return {
    success: true,
    interpretation: 'round_trip_latency',
    value: 21.375,
    failure: null,
    started_at: '2026-01-01T00:00:00.000Z',
    url: 'wss://stream.example.com/socket?channel=prices',
    timings: {
      dns_ms: 1.5,
      tcp_connect_ms: 2.25,
      tls_handshake_ms: 4.125,
      upgrade_ms: 5.5,
      open_ms: 13.375,
      round_trip_ms: 21.375,
      ping_ms: null,
      close_ms: 0.75,
      total_ms: 36.125,
    },
    connection: { remote_address: '192.0.2.7', remote_port: 443, ip_family: 4 },
    upgrade: {
      status_code: 101,
      status_message: 'Switching Protocols',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-accept': 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
        date: 'Thu, 01 Jan 2026 00:00:00 GMT',
      },
    },
    subprotocol: null,
    extensions: 'permessage-deflate; client_max_window_bits',
    tls: {
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      authorized: true,
      authorization_error: null,
      certificate: {
        subject: 'CN=stream.example.com',
        issuer: "CN=R11, O=Let's Encrypt, C=US",
        subject_alt_names: 'DNS:stream.example.com, DNS:*.stream.example.com',
        valid_from: '2025-12-01T00:00:00.000Z',
        valid_to: '2026-03-01T12:00:00.000Z',
        days_remaining: 59,
        serial_number: '04A1B2C3D4E5F60718293A4B5C6D7E8F9A0B',
        fingerprint_sha256:
          '5E:8F:16:06:2E:A3:CD:2C:4A:0D:54:78:76:BA:A6:F3:8C:AB:F6:25:09:C8:7E:4B:B1:13:39:4A:D8:7D:9A:21',
      },
    },
    close: { code: 1000, reason: '', initiator: 'client', clean: true },
    messages_sent: 1,
    messages_received: 1,
    last_message: { data: '{"op":"pong","seq":1}', binary: false, size_bytes: 21, truncated: false },
    steps: [],
    assertions: [
      {
        type: 'response_time',
        operator: 'less_than',
        property: 'round_trip',
        target: 500,
        actual: 21.375,
        passed: true,
        message: '21.375 ms less than 500 ms',
      },
    ],
    ...overrides,
  };
}

/** A scheduled, successful result whose fields agree with its document. */
export function agentResult(overrides: Partial<AgentResult> = {}): AgentResult {
  const document = probeResultDocument();
  return {
    result_id: randomUUID(),
    sequence: 1,
    test_id: randomUUID(),
    test_revision: 1,
    slot_time: new Date(Math.floor(Date.now() / 60_000) * 60_000),
    started_time: new Date(),
    attempts: 1,
    run_id: undefined,
    success: true,
    value: document.value ?? undefined,
    reason: '',
    cause: '',
    category: '',
    open_ms: document.timings.open_ms ?? undefined,
    round_trip_ms: document.timings.round_trip_ms ?? undefined,
    total_ms: document.timings.total_ms,
    close_code: 1000,
    tls_not_after: new Date(document.tls!.certificate!.valid_to),
    result_json: Buffer.from(JSON.stringify(document)),
    ...overrides,
  };
}
