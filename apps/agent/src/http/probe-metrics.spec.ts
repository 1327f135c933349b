import { emptyProbeTimings, parseProbeConfig, type ProbeConfig, type ProbeResult } from '@wsmon/contracts';
import { describe, expect, it } from 'vitest';
import { writeExposition } from '@wsmon/metrics';
import { familyNamed, parseExposition, sampleValue } from '@wsmon/metrics/parser';
import {
  expectsMessage,
  ipAddressHash,
  msToSeconds,
  probeMetricFamilies,
  tlsVersionLabel,
  websocketPhaseSeconds,
} from './probe-metrics';
import { probeResult, refusedResult } from './probe-result.spec-helper';

function config(input: Record<string, unknown>): ProbeConfig {
  const parsed = parseProbeConfig({ url: 'wss://example.test/socket', ...input });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.value;
}

const parse = (result: ProbeResult, probeConfig?: ProbeConfig) =>
  parseExposition(writeExposition(probeMetricFamilies(result, probeConfig)));

describe(probeMetricFamilies.name, () => {
  it("reports a successful wss:// probe with blackbox_exporter's and seed 004's names", () => {
    const families = parse(probeResult());
    expect(families.map((f) => f.name)).toEqual([
      'probe_dns_lookup_time_seconds',
      'probe_duration_seconds',
      'probe_ip_addr_hash',
      'probe_ip_protocol',
      'probe_ssl_earliest_cert_expiry',
      'probe_ssl_last_chain_info',
      'probe_success',
      'probe_tls_cipher_info',
      'probe_tls_version_info',
      'probe_websocket_connection_duration_seconds',
      'probe_websocket_connection_upgraded',
      'probe_websocket_duration_seconds',
      'probe_websocket_status_code',
      'probe_websocket_up',
      'probe_wsmon_round_trip_seconds',
    ]);
    expect(families.every((f) => f.type === 'gauge' && f.help)).toBe(true);
    expect(sampleValue(families, 'probe_success')).toBe(1);
    expect(sampleValue(families, 'probe_websocket_up')).toBe(1);
    expect(sampleValue(families, 'probe_websocket_connection_upgraded')).toBe(1);
    expect(sampleValue(families, 'probe_websocket_status_code')).toBe(101);
    expect(sampleValue(families, 'probe_websocket_connection_duration_seconds')).toBe(0.0132);
    expect(sampleValue(families, 'probe_duration_seconds')).toBe(0.0163);
    expect(sampleValue(families, 'probe_dns_lookup_time_seconds')).toBe(0.0015);
    expect(sampleValue(families, 'probe_ip_protocol')).toBe(4);
    expect(sampleValue(families, 'probe_tls_version_info', { version: 'TLS 1.3' })).toBe(1);
    expect(sampleValue(families, 'probe_tls_cipher_info', { cipher: 'TLS_AES_256_GCM_SHA384' })).toBe(1);
    expect(sampleValue(families, 'probe_ssl_earliest_cert_expiry')).toBe(Date.UTC(2026, 2, 1, 12) / 1000);
    expect(sampleValue(families, 'probe_wsmon_round_trip_seconds')).toBe(0.0011);
  });

  it('reports every measured phase under its phase label', () => {
    const phases = familyNamed(parse(probeResult()), 'probe_websocket_duration_seconds');
    expect(Object.fromEntries(phases?.samples.map((s) => [s.labels.phase, s.value]) ?? [])).toEqual({
      resolve: 0.0015,
      connect: 0.00225,
      tls: 0.004125,
      processing: 0.005,
      transfer: 0.0013,
      ping: 0.0011,
      close: 0.0007,
    });
  });

  it('labels the leaf certificate as blackbox does: hex without colons, DNS names only, no leading zeros', () => {
    const info = familyNamed(parse(probeResult()), 'probe_ssl_last_chain_info');
    expect(info?.samples[0]?.labels).toEqual({
      fingerprint_sha256: 'aabbcc01',
      subject: 'CN=example.test,O=Example, Inc.',
      issuer: 'CN=Example CA,O=Example',
      subjectalternative: 'example.test,www.example.test',
      serialnumber: 'ab12',
    });
  });

  it('reports a refused connection: failed, not up, no status, no connection duration, and why', () => {
    const families = parse(refusedResult());
    expect(sampleValue(families, 'probe_success')).toBe(0);
    expect(sampleValue(families, 'probe_websocket_up')).toBe(0);
    expect(sampleValue(families, 'probe_websocket_connection_upgraded')).toBe(0);
    expect(sampleValue(families, 'probe_websocket_status_code')).toBe(0);
    expect(familyNamed(families, 'probe_websocket_connection_duration_seconds')).toBeUndefined();
    expect(familyNamed(families, 'probe_tls_version_info')).toBeUndefined();
    expect(
      sampleValue(families, 'probe_wsmon_failure_info', {
        reason: 'ws_open_failed',
        cause: 'connection_refused',
        category: 'CONNRESET',
      }),
    ).toBe(1);
    // An IP literal needs no lookup: resolve is there, and took nothing.
    const phases = familyNamed(families, 'probe_websocket_duration_seconds')?.samples;
    expect(phases?.map((s) => [s.labels.phase, s.value])).toEqual([
      ['resolve', 0],
      ['connect', 0.0008],
    ]);
  });

  it('reports the status code of a refused upgrade', () => {
    const result = probeResult({
      success: false,
      failure: {
        reason: 'ws_open_failed',
        cause: 'http_unexpected_status',
        category: 'INVALID_REQUEST',
        message: 'the server answered the upgrade with HTTP 426',
      },
      timings: { ...emptyProbeTimings(), tcp_connect_ms: 1, upgrade_ms: 2, total_ms: 3.5 },
      upgrade: { status_code: 426, status_message: 'Upgrade Required', headers: {} },
      tls: null,
      close: null,
      steps: [],
    });
    const families = parse(result);
    expect(sampleValue(families, 'probe_websocket_status_code')).toBe(426);
    expect(sampleValue(families, 'probe_websocket_up')).toBe(0);
  });

  it('reports probe_websocket_failed_due_to_regex only for probes that expect a message', () => {
    expect(familyNamed(parse(probeResult()), 'probe_websocket_failed_due_to_regex')).toBeUndefined();
    const echo = config({ ping_mode: 'message', send_message: 'hi', expect_message: 'hi' });
    expect(sampleValue(parse(probeResult(), echo), 'probe_websocket_failed_due_to_regex')).toBe(0);
    const mismatch = probeResult({
      success: false,
      failure: { reason: 'ws_reply_mismatch', cause: 'assertion', category: 'ASSERTION', message: 'no' },
    });
    expect(sampleValue(parse(mismatch, echo), 'probe_websocket_failed_due_to_regex')).toBe(1);
    // Never reported for a probe that did not open: there was nothing to match.
    expect(familyNamed(parse(refusedResult(), echo), 'probe_websocket_failed_due_to_regex')).toBeUndefined();
  });

  it('keeps label values that need escaping readable', () => {
    const result = probeResult({
      tls: {
        protocol: 'TLSv1.2',
        cipher: 'ECDHE-RSA-AES128-GCM-SHA256',
        authorized: true,
        authorization_error: null,
        certificate: {
          subject: 'CN=we"ird\\name',
          issuer: 'CN=x',
          subject_alt_names: null,
          valid_from: '2025-01-01T00:00:00.000Z',
          valid_to: '2027-01-01T00:00:00.000Z',
          days_remaining: 300,
          serial_number: '0',
          fingerprint_sha256: '00',
        },
      },
    });
    const info = familyNamed(parse(result), 'probe_ssl_last_chain_info')?.samples[0]?.labels;
    expect(info).toMatchObject({ subject: 'CN=we"ird\\name', subjectalternative: '', serialnumber: '0' });
  });
});

describe(websocketPhaseSeconds.name, () => {
  it('reports the message exchange as transfer only once the WebSocket opened and exchanged something', () => {
    const handshakeOnly = probeResult({
      steps: [{ index: 0, type: 'connect', passed: true, duration_ms: 13.2 }],
      timings: { ...probeResult().timings, ping_ms: null },
    });
    expect(websocketPhaseSeconds(handshakeOnly).transfer).toBeUndefined();
    expect(websocketPhaseSeconds(probeResult()).transfer).toBe(0.0013);
  });
});

describe(tlsVersionLabel.name, () => {
  it.each([
    ['TLSv1', 'TLS 1.0'],
    ['TLSv1.1', 'TLS 1.1'],
    ['TLSv1.2', 'TLS 1.2'],
    ['TLSv1.3', 'TLS 1.3'],
    ['SSLv3', 'unknown'],
    [null, 'unknown'],
  ])('labels %s as %s', (protocol, label) => {
    expect(tlsVersionLabel(protocol)).toBe(label);
  });
});

describe(ipAddressHash.name, () => {
  it('is 32-bit FNV-1a, as Go hash/fnv computes it', () => {
    expect(ipAddressHash('')).toBe(0x811c9dc5);
    expect(ipAddressHash('a')).toBe(0xe40c292c);
    expect(ipAddressHash('foobar')).toBe(0xbf9cf968);
  });
});

describe(msToSeconds.name, () => {
  it('converts without float noise', () => {
    expect(msToSeconds(1.31)).toBe(0.00131);
    expect(msToSeconds(501.437)).toBe(0.501437);
    expect(msToSeconds(0)).toBe(0);
  });
});

describe(expectsMessage.name, () => {
  it('is true for message pings, expected messages, receive steps and message assertions', () => {
    expect(expectsMessage(config({}))).toBe(false);
    expect(expectsMessage(config({ ping_mode: 'protocol' }))).toBe(false);
    expect(expectsMessage(config({ ping_mode: 'message', send_message: 'x' }))).toBe(true);
    expect(
      expectsMessage(
        config({ steps: [{ type: 'connect' }, { type: 'send', message: 'a' }, { type: 'receive' }] }),
      ),
    ).toBe(true);
    expect(
      expectsMessage(
        config({ assertions: [{ type: 'received_message', operator: 'contains', target: 'a' }] }),
      ),
    ).toBe(true);
  });
});
