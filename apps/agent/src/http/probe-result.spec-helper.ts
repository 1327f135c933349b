import { emptyProbeTimings, type ProbeResult } from '@wsmon/contracts';

/** A successful wss:// probe with a protocol ping, as the engine reports one. */
export function probeResult(overrides: Partial<ProbeResult> = {}): ProbeResult {
  return {
    success: true,
    interpretation: 'handshake_latency',
    value: 13.2,
    failure: null,
    started_at: '2026-01-01T00:00:00.000Z',
    url: 'wss://example.test/socket',
    timings: {
      dns_ms: 1.5,
      tcp_connect_ms: 2.25,
      tls_handshake_ms: 4.125,
      upgrade_ms: 5,
      open_ms: 13.2,
      round_trip_ms: null,
      ping_ms: 1.1,
      close_ms: 0.7,
      total_ms: 16.3,
    },
    connection: { remote_address: '192.0.2.7', remote_port: 443, ip_family: 4 },
    upgrade: { status_code: 101, status_message: 'Switching Protocols', headers: {} },
    subprotocol: null,
    extensions: null,
    tls: {
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      authorized: true,
      authorization_error: null,
      certificate: {
        subject: 'CN=example.test, O=Example, Inc.',
        issuer: 'CN=Example CA, O=Example',
        subject_alt_names: 'DNS:example.test, DNS:www.example.test, IP Address:192.0.2.7',
        valid_from: '2025-12-01T00:00:00.000Z',
        valid_to: '2026-03-01T12:00:00.000Z',
        days_remaining: 59,
        serial_number: '00AB12',
        fingerprint_sha256: 'AA:BB:CC:01',
      },
    },
    close: { code: 1000, reason: '', initiator: 'client', clean: true },
    messages_sent: 0,
    messages_received: 0,
    last_message: null,
    steps: [
      { index: 0, type: 'connect', passed: true, duration_ms: 13.2 },
      { index: 1, type: 'ping', passed: true, duration_ms: 1.3, round_trip_ms: 1.1, pongs_received: 1 },
    ],
    assertions: [],
    ...overrides,
  };
}

/** A probe refused at TCP connect, before anything else happened. */
export function refusedResult(): ProbeResult {
  return probeResult({
    success: false,
    value: null,
    failure: {
      reason: 'ws_open_failed',
      cause: 'connection_refused',
      category: 'CONNRESET',
      message: 'TCP connect to 127.0.0.1:9: connect ECONNREFUSED',
      error_code: 'ECONNREFUSED',
    },
    url: 'ws://127.0.0.1:9/',
    timings: { ...emptyProbeTimings(), tcp_connect_ms: 0.8, total_ms: 1.2 },
    connection: { remote_address: '127.0.0.1', remote_port: 9, ip_family: 4 },
    upgrade: null,
    tls: null,
    close: null,
    steps: [],
  });
}
