import { categoryOf, FAILURE_CAUSES, FAILURE_CATEGORIES } from '@wsmon/contracts';
import { describe, expect, it } from 'vitest';
import {
  classifyDnsError,
  classifyNetworkError,
  classifyUpgradeError,
  tlsVerificationFailure,
} from './failure';

const withCode = (code: string, message = `${code} happened`) => Object.assign(new Error(message), { code });

/**
 * The mapping tables, for the causes a loopback zoo cannot produce (unreachable hosts, connect
 * timeouts); every other cause is produced for real in probe.spec.ts.
 */
describe(classifyNetworkError.name, () => {
  it.each([
    ['ECONNREFUSED', 'ws_open_failed', 'connection_refused', 'CONNRESET'],
    ['ECONNRESET', 'ws_open_failed', 'connection_reset', 'CONNRESET'],
    ['EPIPE', 'ws_open_failed', 'connection_reset', 'CONNRESET'],
    ['EHOSTUNREACH', 'ws_open_failed', 'host_unreachable', 'CONNRESET'],
    ['ENETUNREACH', 'ws_open_failed', 'host_unreachable', 'CONNRESET'],
    ['ETIMEDOUT', 'ws_handshake_timeout', 'tcp_connect_timeout', 'TIMEOUT'],
    ['EMFILE', 'ws_open_failed', 'network_error', 'CONNRESET'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'ws_open_failed', 'tls_handshake_failed', 'SSL'],
    ['CERT_HAS_EXPIRED', 'ws_open_failed', 'tls_cert_expired', 'SSL'],
  ])('%s -> %s / %s', (code, reason, cause, category) => {
    const failure = classifyNetworkError(withCode(code), 'TCP connect').toFailure((s) => s);
    expect(failure).toMatchObject({ reason, cause, category, error_code: code });
    expect(failure.message).toMatch(/^TCP connect: |^TLS: /);
  });

  it('uses the short OpenSSL reason instead of the multi-line dump', () => {
    const error = Object.assign(
      withCode('ERR_SSL_WRONG_VERSION_NUMBER', 'C0:error:0A00010B:SSL routines\n'),
      {
        reason: 'wrong version number',
      },
    );
    expect(classifyNetworkError(error, 'TLS handshake').message).toBe('TLS handshake: wrong version number');
  });

  it('reads a hang-up without a code as a reset', () => {
    expect(classifyNetworkError(new Error('socket hang up'), 'upgrade').failureCause).toBe(
      'connection_reset',
    );
  });
});

describe(classifyDnsError.name, () => {
  it.each([
    ['ENOTFOUND', 'dns_not_found'],
    ['ENODATA', 'dns_not_found'],
    ['EAI_NONAME', 'dns_not_found'],
    ['ETIMEOUT', 'dns_timeout'],
    ['ESERVFAIL', 'dns_failure'],
    ['EREFUSED', 'dns_failure'],
    ['EAI_AGAIN', 'dns_failure'],
    // A resolver that cannot reach its DNS server is a DNS failure, not a refused endpoint.
    ['ECONNREFUSED', 'dns_failure'],
  ])('%s -> %s', (code, cause) => {
    expect(classifyDnsError(withCode(code), 'example.com').failureCause).toBe(cause);
  });
});

describe(tlsVerificationFailure.name, () => {
  it.each([
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls_self_signed'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'tls_self_signed'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls_unknown_ca'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'tls_unknown_ca'],
    ['CERT_NOT_YET_VALID', 'tls_cert_not_yet_valid'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls_hostname_mismatch'],
    ['SOMETHING_NEW', 'tls_handshake_failed'],
  ])('%s -> %s', (code, cause) => {
    expect(tlsVerificationFailure(code).failureCause).toBe(cause);
  });
});

describe(classifyUpgradeError.name, () => {
  it.each([
    ['Server sent an invalid subprotocol', 'subprotocol_mismatch'],
    ['Server sent no subprotocol', 'subprotocol_mismatch'],
    ['Invalid Sec-WebSocket-Accept header', 'invalid_upgrade_response'],
    [
      'Server sent a Sec-WebSocket-Extensions header but no extension was requested',
      'invalid_upgrade_response',
    ],
  ])('%s -> %s', (message, cause) => {
    expect(classifyUpgradeError(new Error(message)).failureCause).toBe(cause);
  });
});

describe(categoryOf.name, () => {
  it('puts every cause in one of the categories', () => {
    for (const cause of FAILURE_CAUSES) expect(FAILURE_CATEGORIES).toContain(categoryOf(cause));
  });
});
