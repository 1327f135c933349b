import type {
  FailureCategory,
  FailureCause,
  ProbeConfigInput,
  ProbeResult,
  ReasonCode,
} from '@wsmon/contracts';
import {
  DNS_SERVFAIL_NAME,
  DNS_SILENT_NAME,
  startTargetZoo,
  startTestDnsServer,
  ZOO_SECRETS,
  ZOO_SERVER_ID,
  ZOO_SUBPROTOCOL,
  type TargetZoo,
  type TestDnsServer,
} from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dnsServerLookup } from './lookup';
import { REDACTED } from './secrets';
import { runProbe } from './probe';

let zoo: TargetZoo;
let dns: TestDnsServer;

beforeAll(async () => {
  zoo = await startTargetZoo();
  // Host names resolve through a DNS server on 127.0.0.1: no query leaves the machine.
  dns = await startTestDnsServer({ 'echo.zoo.test': '127.0.0.1' });
});

afterAll(async () => {
  await zoo.close();
  await dns.close();
});

const zooDns = () => ({ lookup: dnsServerLookup([dns.address]) });

/** Probe input with a short deadline: the zoo is local, so only deliberate timeouts take long. */
function probeConfig(overrides: Partial<ProbeConfigInput> & { url: string }): ProbeConfigInput {
  return { timeout_ms: 3000, ...overrides };
}

const roundTrip = (url: string, message = 'hello', extra: Partial<ProbeConfigInput> = {}) =>
  probeConfig({
    url,
    interpretation: 'round_trip_latency',
    ping_mode: 'message',
    send_message: message,
    ...extra,
  });

function expectFailure(
  result: ProbeResult,
  reason: ReasonCode,
  cause: FailureCause,
  category: FailureCategory,
) {
  expect(result.success).toBe(false);
  expect(result.failure).toMatchObject({ reason, cause, category });
  expect(result.failure?.message.length).toBeGreaterThan(0);
}

describe(runProbe.name, () => {
  describe('measurements', () => {
    it('measures each phase of a handshake on a monotonic clock', async () => {
      const result = await runProbe(probeConfig({ url: zoo.url('/echo') }));

      expect(result.success).toBe(true);
      expect(result.failure).toBeNull();
      const t = result.timings;
      expect(t.dns_ms).toBeNull(); // an IP literal needs no lookup
      expect(t.tcp_connect_ms).toBeGreaterThan(0);
      expect(t.tls_handshake_ms).toBeNull();
      expect(t.upgrade_ms).toBeGreaterThan(0);
      expect(t.open_ms).toBeGreaterThanOrEqual(t.tcp_connect_ms! + t.upgrade_ms!);
      expect(t.close_ms).toBeGreaterThan(0);
      expect(t.total_ms).toBeGreaterThanOrEqual(t.open_ms! + t.close_ms!);
      expect(result.value).toBe(t.open_ms);
      expect(result.upgrade).toMatchObject({ status_code: 101, status_message: 'Switching Protocols' });
      expect(result.upgrade?.headers['sec-websocket-accept']).toBeTruthy();
      expect(result.close).toEqual({ code: 1000, reason: '', initiator: 'client', clean: true });
      expect(result.connection).toMatchObject({ remote_address: '127.0.0.1', ip_family: 4 });
      expect(Date.parse(result.started_at)).not.toBeNaN();
    });

    it('times the DNS lookup of a host name', async () => {
      const queriesBefore = dns.queries();
      const result = await runProbe(
        probeConfig({ url: zoo.url('/echo').replace('127.0.0.1', 'echo.zoo.test') }),
        zooDns(),
      );
      expect(result.success).toBe(true);
      expect(result.timings.dns_ms).toBeGreaterThan(0);
      expect(result.connection.remote_address).toBe('127.0.0.1');
      expect(dns.queries()).toBeGreaterThan(queriesBefore);
    });

    it('resolves localhost through the operating system by default', async () => {
      const result = await runProbe(probeConfig({ url: zoo.url('/echo').replace('127.0.0.1', 'localhost') }));
      expect(result.success).toBe(true);
      expect(result.timings.dns_ms).toBeGreaterThanOrEqual(0);
    });

    it('reports the message round trip for round_trip_latency', async () => {
      const result = await runProbe(roundTrip(zoo.url('/echo'), '{"op":"ping"}', { expect_message: '"op"' }));
      expect(result.success).toBe(true);
      expect(result.timings.round_trip_ms).toBeGreaterThan(0);
      expect(result.value).toBe(result.timings.round_trip_ms);
      expect(result.messages_sent).toBe(1);
      expect(result.last_message).toEqual({
        data: '{"op":"ping"}',
        binary: false,
        size_bytes: 13,
        truncated: false,
      });
    });

    it('measures a protocol ping/pong round trip', async () => {
      const result = await runProbe(
        probeConfig({ url: zoo.url('/echo'), interpretation: 'round_trip_latency', ping_mode: 'protocol' }),
      );
      expect(result.success).toBe(true);
      expect(result.timings.ping_ms).toBeGreaterThan(0);
      expect(result.value).toBe(result.timings.ping_ms);
    });

    it('reports connection_success as 1 or 0, never as no data', async () => {
      const up = await runProbe(probeConfig({ url: zoo.url('/echo'), interpretation: 'connection_success' }));
      const down = await runProbe(probeConfig({ url: zoo.refusedUrl, interpretation: 'connection_success' }));
      expect(up.value).toBe(1);
      expect(down.value).toBe(0);
      expect(down.success).toBe(false);
    });

    it('reports no latency value when the socket never opened', async () => {
      const result = await runProbe(probeConfig({ url: zoo.refusedUrl }));
      expect(result.value).toBeNull();
      expect(result.timings.open_ms).toBeNull();
      expect(result.close).toBeNull();
    });

    it('sends the configured headers, origin and its user agent in the upgrade request', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/headers'),
          origin: 'https://app.example.com',
          headers: { 'X-Tenant': 'acme' },
          steps: [{ type: 'connect' }, { type: 'receive' }],
        }),
      );
      expect(result.success).toBe(true);
      const seen = JSON.parse(result.last_message!.data) as { headers: Record<string, string> };
      expect(seen.headers).toMatchObject({ origin: 'https://app.example.com', 'x-tenant': 'acme' });
      expect(seen.headers['user-agent']).toMatch(/^wsmon-probe\//);
      expect(result.upgrade?.headers['x-zoo-server']).toBe('zoo');
    });
  });

  describe('reason codes and causes', () => {
    it('ws_open_failed: connection refused', async () => {
      const result = await runProbe(probeConfig({ url: zoo.refusedUrl }));
      expectFailure(result, 'ws_open_failed', 'connection_refused', 'CONNRESET');
      expect(result.failure?.error_code).toBe('ECONNREFUSED');
      expect(result.timings.tcp_connect_ms).toBeGreaterThan(0);
      expect(result.timings.upgrade_ms).toBeNull();
    });

    it('ws_open_failed: connection reset', async () => {
      const result = await runProbe(probeConfig({ url: zoo.resetUrl }));
      expectFailure(result, 'ws_open_failed', 'connection_reset', 'CONNRESET');
    });

    it('ws_open_failed: a name that does not resolve', async () => {
      const result = await runProbe(probeConfig({ url: 'ws://no-such-host.zoo.test/echo' }), zooDns());
      expectFailure(result, 'ws_open_failed', 'dns_not_found', 'DNS');
      expect(result.failure?.error_code).toBe('ENOTFOUND');
      expect(result.timings.dns_ms).toBeGreaterThan(0); // attempted phases keep their duration
      expect(result.timings.tcp_connect_ms).toBeNull();
    });

    it('ws_open_failed: a resolver that fails (SERVFAIL) is not a missing name', async () => {
      const result = await runProbe(probeConfig({ url: `ws://${DNS_SERVFAIL_NAME}/echo` }), zooDns());
      expectFailure(result, 'ws_open_failed', 'dns_failure', 'DNS');
      expect(result.failure?.error_code).toBe('ESERVFAIL');
    });

    it('ws_open_failed: a 101 whose Sec-WebSocket-Accept does not answer the key', async () => {
      const result = await runProbe(probeConfig({ url: zoo.url('/bad-accept') }));
      expectFailure(result, 'ws_open_failed', 'invalid_upgrade_response', 'INVALID_REQUEST');
      expect(result.upgrade?.status_code).toBe(101);
      expect(result.timings.open_ms).toBeNull();
    });

    it('ws_open_failed: a server that picks a subprotocol the client never offered', async () => {
      const unasked = await runProbe(probeConfig({ url: zoo.url('/unoffered-subprotocol') }));
      expectFailure(unasked, 'ws_open_failed', 'subprotocol_mismatch', 'INVALID_REQUEST');
      const other = await runProbe(
        probeConfig({ url: zoo.url('/unoffered-subprotocol'), protocols: ['chat'] }),
      );
      expectFailure(other, 'ws_open_failed', 'subprotocol_mismatch', 'INVALID_REQUEST');
      expect(other.upgrade?.headers['sec-websocket-protocol']).toBe('surprise.v1');
    });

    it('ws_handshake_timeout: a DNS server that never answers', async () => {
      const result = await runProbe(
        probeConfig({ url: `ws://${DNS_SILENT_NAME}/echo`, timeout_ms: 300 }),
        zooDns(),
      );
      expectFailure(result, 'ws_handshake_timeout', 'dns_timeout', 'TIMEOUT');
    });

    it.each([426, 400, 401, 200])('ws_open_failed: upgrade answered with HTTP %i', async (status) => {
      const result = await runProbe(probeConfig({ url: zoo.url(`/status/${status}`) }));
      expectFailure(result, 'ws_open_failed', 'http_unexpected_status', 'INVALID_REQUEST');
      expect(result.failure?.error_code).toBe(`HTTP_${status}`);
      expect(result.upgrade?.status_code).toBe(status);
      expect(result.upgrade?.headers['x-zoo-status']).toBe(String(status));
      expect(result.upgrade?.body_preview).toMatch(new RegExp(`^<html><body>status ${status}`));
      expect(Buffer.byteLength(result.upgrade!.body_preview!)).toBeLessThanOrEqual(1024);
      expect(result.upgrade?.body_truncated).toBe(true);
      if (status === 401) expect(result.upgrade?.headers['www-authenticate']).toMatch(/^Bearer/);
      if (status === 426) expect(result.upgrade?.headers.upgrade).toBe('websocket');
    });

    it('ws_handshake_timeout: the server accepts TCP but never answers the upgrade', async () => {
      const result = await runProbe(probeConfig({ url: zoo.blackholeUrl, timeout_ms: 300 }));
      expectFailure(result, 'ws_handshake_timeout', 'upgrade_timeout', 'TIMEOUT');
      expect(result.timings.tcp_connect_ms).toBeGreaterThan(0);
      expect(result.timings.upgrade_ms).toBeGreaterThan(0); // the attempted upgrade keeps its duration
    });

    it('ws_handshake_timeout: a handshake slower than the timeout', async () => {
      const result = await runProbe(
        probeConfig({ url: zoo.url('/slow-handshake?delay_ms=2000'), timeout_ms: 300 }),
      );
      expectFailure(result, 'ws_handshake_timeout', 'upgrade_timeout', 'TIMEOUT');
    });

    it('ws_reply_timeout: the endpoint never replies', async () => {
      const result = await runProbe(roundTrip(zoo.url('/silent'), 'hello', { timeout_ms: 400 }));
      expectFailure(result, 'ws_reply_timeout', 'reply_timeout', 'TIMEOUT');
      expect(result.value).toBeNull();
      expect(result.timings.open_ms).toBeGreaterThan(0);
      expect(result.close?.initiator).toBe('client');
    });

    it('ws_closed_early: closed with 1011 before the reply, with the close code', async () => {
      const result = await runProbe(roundTrip(zoo.url('/close-1011')));
      expectFailure(result, 'ws_closed_early', 'closed_by_server', 'CONNRESET');
      expect(result.failure?.error_code).toBe('CLOSE_1011');
      expect(result.failure?.message).toContain('1011');
      expect(result.close).toMatchObject({
        code: 1011,
        reason: 'internal error',
        initiator: 'server',
        clean: true,
      });
    });

    it('ws_closed_early: the TCP connection destroyed without a close frame (1006)', async () => {
      const result = await runProbe(roundTrip(zoo.url('/destroy')));
      expectFailure(result, 'ws_closed_early', 'abnormal_closure', 'CONNRESET');
      expect(result.close).toMatchObject({ code: 1006, clean: false, initiator: 'none' });
    });

    it('ws_reply_mismatch: a reply without the expected text', async () => {
      const result = await runProbe(roundTrip(zoo.url('/wrong-reply'), 'ping', { expect_message: 'pong' }));
      expectFailure(result, 'ws_reply_mismatch', 'assertion', 'ASSERTION');
      expect(result.last_message?.data).toContain('unexpected');
    });

    it('a blank expect_message accepts any reply', async () => {
      const result = await runProbe(roundTrip(zoo.url('/wrong-reply'), 'ping', { expect_message: '' }));
      expect(result.success).toBe(true);
    });

    it('invalid_config: names the field and the rule, and connects nowhere', async () => {
      const before = zoo.stats().acceptedSockets;
      const result = await runProbe({ url: zoo.url('/echo').replace('ws:', 'http:'), timeout_ms: 5 });
      expectFailure(result, 'invalid_config', 'invalid_config', 'INVALID_REQUEST');
      expect(result.config_errors).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ path: 'url', rule: 'ws_scheme' }),
          expect.objectContaining({ path: 'timeout_ms', rule: 'min' }),
        ]),
      );
      expect(zoo.stats().acceptedSockets).toBe(before);
    });
  });

  describe('subprotocols', () => {
    it('fails with the server status when a required subprotocol is not offered', async () => {
      const result = await runProbe(probeConfig({ url: zoo.url('/subprotocol') }));
      expectFailure(result, 'ws_open_failed', 'http_unexpected_status', 'INVALID_REQUEST');
      expect(result.upgrade?.body_preview).toContain(`subprotocol ${ZOO_SUBPROTOCOL} required`);
    });

    it('records the negotiated subprotocol', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/subprotocol'),
          protocols: ['chat', ZOO_SUBPROTOCOL],
          assertions: [
            { type: 'subprotocol', operator: 'is', target: ZOO_SUBPROTOCOL },
            { type: 'subprotocol', operator: 'is_not', target: 'chat' },
          ],
        }),
      );
      expect(result.success).toBe(true);
      expect(result.subprotocol).toBe(ZOO_SUBPROTOCOL);
      expect(result.assertions.every((a) => a.passed)).toBe(true);
    });
  });

  describe('authentication and secrets', () => {
    it('passes with the right bearer token and never records it', async () => {
      const headers = { Authorization: `Bearer ${ZOO_SECRETS.bearerToken}` };
      const result = await runProbe(roundTrip(zoo.url('/auth/bearer'), 'hi', { headers }));
      expect(result.success).toBe(true);
      expect(JSON.stringify(result)).not.toContain(ZOO_SECRETS.bearerToken);
    });

    it('scrubs a rejected token that the server reflects in its 401 body', async () => {
      const wrong = 'Bearer wrong-token-for-zoo-4417';
      const result = await runProbe(
        probeConfig({ url: zoo.url('/auth/bearer'), headers: { Authorization: wrong } }),
      );
      expectFailure(result, 'ws_open_failed', 'http_unexpected_status', 'INVALID_REQUEST');
      expect(result.upgrade?.status_code).toBe(401);
      expect(result.upgrade?.body_preview).toContain(REDACTED);
      expect(JSON.stringify(result)).not.toContain('wrong-token-for-zoo-4417');
    });

    it('sends basic auth and never records the password or the encoded credentials', async () => {
      const ok = await runProbe(
        probeConfig({
          url: zoo.url('/auth/basic'),
          basic_auth: { username: ZOO_SECRETS.basicUser, password: ZOO_SECRETS.basicPassword },
        }),
      );
      expect(ok.success).toBe(true);
      const badPassword = 'not-the-zoo-password-93';
      const bad = await runProbe(
        probeConfig({
          url: zoo.url('/auth/basic'),
          basic_auth: { username: 'zoo-user', password: badPassword },
        }),
      );
      expect(bad.upgrade?.status_code).toBe(401);
      const text = JSON.stringify(bad);
      expect(text).not.toContain(badPassword);
      expect(text).not.toContain(Buffer.from(`zoo-user:${badPassword}`).toString('base64'));
    });

    it('sends cookies in the NAME1=VALUE1; NAME2=VALUE2 form and never records them', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/auth/cookie'),
          cookies: `theme=dark; session=${ZOO_SECRETS.sessionCookie}`,
        }),
      );
      expect(result.success).toBe(true);
      const refused = await runProbe(
        probeConfig({ url: zoo.url('/auth/cookie'), cookies: 'session=stale-cookie-1' }),
      );
      expect(refused.upgrade?.status_code).toBe(401);
      expect(JSON.stringify(refused)).not.toContain('stale-cookie-1');
    });

    it('scrubs secrets from messages that echo the request and redacts cookies the server sets', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/headers'),
          headers: { 'X-Api-Key': 'api-key-value-5521' },
          steps: [{ type: 'connect' }, { type: 'receive' }],
        }),
      );
      expect(result.success).toBe(true);
      expect(result.last_message?.data).toContain(REDACTED);
      expect(JSON.stringify(result)).not.toContain('api-key-value-5521');
      expect(result.upgrade?.headers['set-cookie']).toBe(`zoo_sid=${REDACTED}`);
    });

    it('removes credentials from the recorded URL', async () => {
      const url = zoo.url('/echo?token=query-secret-77&room=1').replace('ws://', 'ws://someone:url-pass-88@');
      const result = await runProbe(probeConfig({ url }));
      expect(result.url).not.toContain('url-pass-88');
      expect(result.url).not.toContain('query-secret-77');
      expect(result.url).toContain('room=1');
    });
  });

  describe('TLS', () => {
    it('verifies a certificate from a private CA and records its details', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.tls.valid.url('/echo'),
          tls: { ca_pem: zoo.tls.caPem },
          assertions: [{ type: 'certificate_days_remaining', operator: 'greater_than', target: 30 }],
        }),
      );
      expect(result.success).toBe(true);
      expect(result.timings.tls_handshake_ms).toBeGreaterThan(0);
      expect(result.tls).toMatchObject({ authorized: true, authorization_error: null });
      expect(result.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
      expect(result.tls?.cipher).toBeTruthy();
      expect(result.tls?.certificate?.subject).toContain('CN=localhost');
      expect(result.tls?.certificate?.issuer).not.toBe(result.tls?.certificate?.subject);
      expect(result.tls?.certificate?.days_remaining).toBeGreaterThan(85);
      expect(Date.parse(result.tls!.certificate!.valid_to)).toBeGreaterThan(Date.now());
    });

    it('fails a self-signed certificate with the SSL cause by default', async () => {
      const result = await runProbe(probeConfig({ url: zoo.tls.selfSigned.url('/echo') }));
      expectFailure(result, 'ws_open_failed', 'tls_self_signed', 'SSL');
      expect(result.failure?.error_code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(result.tls?.certificate?.subject).toContain('CN=localhost');
      expect(result.upgrade).toBeNull(); // nothing, credentials included, was sent to an unverified server
    });

    it('accepts a self-signed certificate given as the CA, or with skip_verify', async () => {
      const withCa = await runProbe(
        probeConfig({ url: zoo.tls.selfSigned.url('/echo'), tls: { ca_pem: zoo.tls.selfSigned.certPem } }),
      );
      expect(withCa.success).toBe(true);
      const skipped = await runProbe(
        probeConfig({ url: zoo.tls.selfSigned.url('/echo'), tls: { skip_verify: true } }),
      );
      expect(skipped.success).toBe(true);
      expect(skipped.tls).toMatchObject({
        authorized: false,
        authorization_error: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      });
    });

    it('fails a certificate from an unknown CA', async () => {
      const result = await runProbe(probeConfig({ url: zoo.tls.valid.url('/echo') }));
      expectFailure(result, 'ws_open_failed', 'tls_unknown_ca', 'SSL');
    });

    it('fails an expired certificate and records how long ago it expired', async () => {
      const result = await runProbe(
        probeConfig({ url: zoo.tls.expired.url('/echo'), tls: { ca_pem: zoo.tls.caPem } }),
      );
      expectFailure(result, 'ws_open_failed', 'tls_cert_expired', 'SSL');
      expect(result.failure?.error_code).toBe('CERT_HAS_EXPIRED');
      expect(result.tls?.certificate?.days_remaining).toBeLessThan(0);
    });

    it('fails a certificate that is not valid yet', async () => {
      const result = await runProbe(
        probeConfig({ url: zoo.tls.notYetValid.url('/echo'), tls: { ca_pem: zoo.tls.caPem } }),
      );
      expectFailure(result, 'ws_open_failed', 'tls_cert_not_yet_valid', 'SSL');
      expect(result.failure?.error_code).toBe('CERT_NOT_YET_VALID');
      expect(Date.parse(result.tls!.certificate!.valid_from)).toBeGreaterThan(Date.now());
    });

    it('fails a hostname mismatch, and passes when server_name names the certificate', async () => {
      const mismatch = await runProbe(
        probeConfig({ url: zoo.tls.wrongHost.url('/echo'), tls: { ca_pem: zoo.tls.caPem } }),
      );
      expectFailure(mismatch, 'ws_open_failed', 'tls_hostname_mismatch', 'SSL');
      const named = await runProbe(
        probeConfig({
          url: zoo.tls.wrongHost.url('/echo'),
          tls: { ca_pem: zoo.tls.caPem, server_name: 'wrong-host.example' },
        }),
      );
      expect(named.success).toBe(true);
    });

    it('times out a TLS handshake the server never answers', async () => {
      const result = await runProbe(
        probeConfig({ url: zoo.blackholeUrl.replace('ws:', 'wss:'), timeout_ms: 300 }),
      );
      expectFailure(result, 'ws_handshake_timeout', 'tls_handshake_timeout', 'TIMEOUT');
    });

    it('fails wss:// against a server that does not speak TLS', async () => {
      const result = await runProbe(probeConfig({ url: zoo.url('/echo').replace('ws:', 'wss:') }));
      expectFailure(result, 'ws_open_failed', 'tls_handshake_failed', 'SSL');
      expect(result.failure?.message).not.toContain('\n');
    });
  });

  describe('multi-step scenarios', () => {
    it('runs connect, receive greeting, send, receive reply, disconnect', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/greeting'),
          interpretation: 'round_trip_latency',
          steps: [
            { type: 'connect', within_ms: 2000 },
            {
              type: 'receive',
              expect_message: '"welcome"',
              assertions: [{ type: 'received_message', operator: 'matches', target: 'server_id":"zoo-\\d' }],
            },
            { type: 'send', message: '{"type":"ping","id":"monitor-check"}' },
            { type: 'receive', timeout_ms: 1000, expect_message: 'monitor-check' },
            { type: 'disconnect', expected_close_code: 1000 },
          ],
        }),
      );
      expect(result.success).toBe(true);
      expect(result.steps.map((s) => [s.type, s.passed])).toEqual([
        ['connect', true],
        ['receive', true],
        ['send', true],
        ['receive', true],
        ['disconnect', true],
      ]);
      expect(result.steps[3]?.round_trip_ms).toBeGreaterThan(0);
      expect(result.value).toBe(result.timings.round_trip_ms);
      expect(result.assertions).toEqual([expect.objectContaining({ step: 1, passed: true })]);
      expect(result.close).toMatchObject({ code: 1000, initiator: 'client', clean: true });
    });

    it('fails the connect step when the connection opens later than allowed', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/slow-handshake?delay_ms=300'),
          steps: [{ type: 'connect', within_ms: 50 }],
        }),
      );
      expectFailure(result, 'assertion_failed', 'connect_too_slow', 'ASSERTION');
      expect(result.failure?.step).toBe(0);
      expect(result.steps[0]).toMatchObject({ type: 'connect', passed: false });
    });

    it('skips non-matching messages when asked to', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/stream?interval_ms=10&count=20'),
          steps: [
            { type: 'connect' },
            { type: 'receive', expect_message: '"seq":3', skip_non_matching: true },
          ],
        }),
      );
      expect(result.success).toBe(true);
      expect(result.last_message?.data).toContain('"seq":3');
    });

    it('fails a receive step whose message assertions do not hold', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/greeting'),
          steps: [
            { type: 'connect' },
            {
              type: 'receive',
              assertions: [{ type: 'received_message', operator: 'contains', target: 'goodbye' }],
            },
          ],
        }),
      );
      expectFailure(result, 'assertion_failed', 'assertion', 'ASSERTION');
      expect(result.failure?.step).toBe(1);
      expect(result.assertions[0]).toMatchObject({ passed: false, step: 1 });
    });

    it('holds the connection and counts messages: a live stream passes', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/stream?interval_ms=20'),
          steps: [{ type: 'connect' }, { type: 'hold', duration_ms: 300, min_messages: 3 }],
        }),
      );
      expect(result.success).toBe(true);
      expect(result.steps[1]?.messages_received).toBeGreaterThanOrEqual(3);
    });

    it('detects a silent drop: the connection stays up but no message arrives', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/stream?interval_ms=20&count=2'),
          steps: [{ type: 'connect' }, { type: 'hold', duration_ms: 300, min_messages: 5 }],
        }),
      );
      expectFailure(result, 'ws_reply_timeout', 'hold_too_few_messages', 'TIMEOUT');
      expect(result.failure?.step).toBe(1);
    });

    it('counts pongs while holding: fails when the server stops answering pings', async () => {
      const steps = [
        { type: 'connect' as const },
        { type: 'hold' as const, duration_ms: 300, min_pongs: 2, ping_interval_ms: 50 },
      ];
      const alive = await runProbe(probeConfig({ url: zoo.url('/echo'), steps }));
      expect(alive.success).toBe(true);
      expect(alive.steps[1]?.pongs_received).toBeGreaterThanOrEqual(2);
      const silent = await runProbe(probeConfig({ url: zoo.url('/silent'), steps }));
      expectFailure(silent, 'ws_reply_timeout', 'hold_too_few_pongs', 'TIMEOUT');
    });

    it('fails a hold that the server ends by closing', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/close?code=4000&reason=bye&after_ms=50'),
          steps: [{ type: 'connect' }, { type: 'hold', duration_ms: 1000 }],
        }),
      );
      expectFailure(result, 'ws_closed_early', 'closed_by_server', 'CONNRESET');
      expect(result.close).toMatchObject({ code: 4000, reason: 'bye', initiator: 'server' });
    });

    it('fails a ping step that gets no pong', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/silent'),
          steps: [{ type: 'connect' }, { type: 'ping', timeout_ms: 200 }],
        }),
      );
      expectFailure(result, 'ws_reply_timeout', 'pong_timeout', 'TIMEOUT');
    });

    it('waits for a server-initiated close and checks its code', async () => {
      const url = zoo.url('/close?code=4001&reason=done&after_ms=50');
      const expected = await runProbe(
        probeConfig({
          url,
          steps: [
            { type: 'connect' },
            { type: 'disconnect', initiator: 'server', expected_close_code: 4001 },
          ],
        }),
      );
      expect(expected.success).toBe(true);
      expect(expected.steps[1]?.close_code).toBe(4001);
      const unexpected = await runProbe(
        probeConfig({
          url,
          steps: [
            { type: 'connect' },
            { type: 'disconnect', initiator: 'server', expected_close_code: 1000 },
          ],
        }),
      );
      expectFailure(unexpected, 'assertion_failed', 'unexpected_close_code', 'ASSERTION');
    });

    it('fails a disconnect step when the server never closes or never answers the close', async () => {
      const neverCloses = await runProbe(
        probeConfig({
          url: zoo.url('/echo'),
          steps: [{ type: 'connect' }, { type: 'disconnect', initiator: 'server', timeout_ms: 200 }],
        }),
      );
      expectFailure(neverCloses, 'ws_reply_timeout', 'close_timeout', 'TIMEOUT');
      const noCloseReply = await runProbe(
        probeConfig({
          url: zoo.url('/no-close-reply'),
          steps: [{ type: 'connect' }, { type: 'disconnect', timeout_ms: 200 }],
        }),
      );
      expectFailure(noCloseReply, 'ws_reply_timeout', 'close_timeout', 'TIMEOUT');
      expect(noCloseReply.close).toMatchObject({ code: 1006, clean: false });
    });

    it('does not fail a finished probe whose server ignores the closing handshake', async () => {
      const result = await runProbe(roundTrip(zoo.url('/no-close-reply'), 'x', { timeout_ms: 1500 }));
      expect(result.success).toBe(true);
      expect(result.close).toMatchObject({ code: 1006, clean: false, initiator: 'client' });
    });
  });

  describe('assertions', () => {
    const message = '{"type":"pong","seq":42}';
    const stringCases = [
      ['contains', '"pong"', true],
      ['contains', 'ping', false],
      ['does_not_contain', 'error', true],
      ['does_not_contain', 'pong', false],
      ['is', message, true],
      ['is', 'pong', false],
      ['is_not', 'pong', true],
      ['is_not', message, false],
      ['matches', '"seq":\\d+', true],
      ['matches', '^pong$', false],
      ['does_not_match', '"error"', true],
      ['does_not_match', 'seq', false],
    ] as const;

    it.each(stringCases)('received_message %s %j -> %s', async (operator, target, passed) => {
      const result = await runProbe(
        roundTrip(zoo.url('/echo'), message, {
          assertions: [{ type: 'received_message', operator, target }],
        }),
      );
      expect(result.assertions).toHaveLength(1);
      expect(result.assertions[0]).toMatchObject({
        type: 'received_message',
        operator,
        target,
        actual: message,
        passed,
      });
      expect(result.assertions[0]?.message).toMatch(/actual .* versus expected/);
      expect(result.success).toBe(passed);
      if (!passed)
        expect(result.failure).toMatchObject({ reason: 'assertion_failed', category: 'ASSERTION' });
    });

    it.each(stringCases.map(([op, , passed]) => [op, passed] as const))(
      'header %s on the 101 response -> %s',
      async (operator, passed) => {
        const targets: Record<string, string> = {
          contains: passed ? 'zo' : 'nginx',
          does_not_contain: passed ? 'nginx' : 'zo',
          is: passed ? 'zoo' : 'Zoo',
          is_not: passed ? 'nginx' : 'zoo',
          matches: passed ? '^z.o$' : '^nginx',
          does_not_match: passed ? '^nginx' : 'o+',
        };
        const result = await runProbe(
          probeConfig({
            url: zoo.url('/headers'),
            assertions: [{ type: 'header', operator, property: 'X-Zoo-Server', target: targets[operator]! }],
          }),
        );
        expect(result.assertions[0]).toMatchObject({ property: 'X-Zoo-Server', actual: 'zoo', passed });
      },
    );

    it('checks response times for connect, round trip and total', async () => {
      const result = await runProbe(
        roundTrip(zoo.url('/echo'), 'x', {
          assertions: [
            { type: 'response_time', operator: 'less_than', property: 'connect', target: 2000 },
            { type: 'response_time', operator: 'less_than', property: 'round_trip', target: 2000 },
            { type: 'response_time', operator: 'less_than', property: 'total', target: 0.001 },
          ],
        }),
      );
      expect(result.assertions.map((a) => a.passed)).toEqual([true, true, false]);
      expect(result.assertions[0]?.actual).toBe(result.timings.open_ms);
      expect(result.assertions[1]?.actual).toBe(result.timings.round_trip_ms);
      expect(result.assertions[2]?.message).toMatch(
        /response time \(total\): actual [\d.]+ ms versus expected less than 0.001 ms/,
      );
      expectFailure(result, 'assertion_failed', 'assertion', 'ASSERTION');
    });

    it('checks the close code', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.url('/echo'),
          assertions: [
            { type: 'close_code', operator: 'is', target: 1000 },
            { type: 'close_code', operator: 'is_not', target: 1000 },
          ],
        }),
      );
      expect(result.assertions.map((a) => [a.actual, a.passed])).toEqual([
        [1000, true],
        [1000, false],
      ]);
    });

    it('checks the days a certificate has left', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.tls.valid.url('/echo'),
          tls: { ca_pem: zoo.tls.caPem },
          assertions: [
            { type: 'certificate_days_remaining', operator: 'greater_than', target: 14 },
            { type: 'certificate_days_remaining', operator: 'greater_than', target: 365 },
          ],
        }),
      );
      expect(result.assertions.map((a) => a.passed)).toEqual([true, false]);
    });

    it('never passes an assertion with nothing to check', async () => {
      const result = await runProbe(
        probeConfig({
          url: zoo.refusedUrl,
          assertions: [{ type: 'header', operator: 'does_not_contain', property: 'server', target: 'x' }],
        }),
      );
      expect(result.assertions[0]).toMatchObject({ actual: null, passed: false });
      expect(result.failure?.reason).toBe('ws_open_failed'); // the first failure is the one reported
    });
  });
});

describe('json_path assertions in the raw scenario', () => {
  it('checks a receive step message and the last message by JSON path', async () => {
    const result = await runProbe(
      probeConfig({
        url: zoo.url('/greeting'),
        steps: [
          { type: 'connect' },
          {
            type: 'receive',
            assertions: [
              { type: 'json_path', property: '$.server_id', operator: 'equals', target: ZOO_SERVER_ID },
            ],
          },
        ],
        assertions: [{ type: 'json_path', property: '$.type', operator: 'matches', target: '^wel' }],
      }),
    );
    expect(result.failure).toBeNull();
    expect(result.assertions).toMatchObject([
      { type: 'json_path', step: 1, passed: true, actual: ZOO_SERVER_ID },
      { type: 'json_path', passed: true, actual: 'welcome' },
    ]);
    expect(result).not.toHaveProperty('profile');
  });

  it('fails a receive step whose JSON does not hold', async () => {
    const result = await runProbe(
      probeConfig({
        url: zoo.url('/greeting'),
        steps: [
          { type: 'connect' },
          {
            type: 'receive',
            assertions: [{ type: 'json_path', property: '$.server_id', operator: 'equals', target: 'zoo-2' }],
          },
        ],
      }),
    );
    expect(result.failure).toMatchObject({ reason: 'assertion_failed', cause: 'assertion', step: 1 });
  });
});
