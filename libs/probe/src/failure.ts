import {
  categoryOf,
  type FailureCause,
  type ProbeFailure,
  type ReasonCode,
  type TlsDetails,
} from '@wsmon/contracts';

/** A probe failure raised inside the engine; becomes the result's `failure`. */
export class ProbeFailureError extends Error {
  /** The certificate seen before a TLS verification failure, so the result still shows it. */
  tls?: TlsDetails;

  constructor(
    readonly reason: ReasonCode,
    readonly failureCause: FailureCause,
    message: string,
    readonly errorCode?: string,
    readonly step?: number,
  ) {
    super(message);
    this.name = 'ProbeFailureError';
  }

  toFailure(scrub: (s: string) => string): ProbeFailure {
    return {
      reason: this.reason,
      cause: this.failureCause,
      category: categoryOf(this.failureCause),
      message: scrub(this.message),
      ...(this.errorCode === undefined ? {} : { error_code: this.errorCode }),
      ...(this.step === undefined ? {} : { step: this.step }),
    };
  }
}

export const fail = (
  reason: ReasonCode,
  cause: FailureCause,
  message: string,
  errorCode?: string,
  step?: number,
): ProbeFailureError => new ProbeFailureError(reason, cause, message, errorCode, step);

/** Codes of getaddrinfo and c-ares meaning "this name has no address" (as opposed to a broken resolver). */
const DNS_NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME', 'EAI_NONAME', 'EAI_NODATA']);
const DNS_TIMEOUT = new Set(['ETIMEOUT', 'ETIMEDOUT', 'ECANCELLED']);

/**
 * Maps a lookup error. DNS has its own codes, and some collide with socket ones: ECONNREFUSED
 * from a resolver means the DNS server refused, not the endpoint.
 */
export function classifyDnsError(error: unknown, host: string): ProbeFailureError {
  const code = errorCodeOf(error) ?? 'UNKNOWN';
  if (DNS_NOT_FOUND.has(code))
    return fail('ws_open_failed', 'dns_not_found', `DNS: ${host} does not resolve (${code})`, code);
  if (DNS_TIMEOUT.has(code)) {
    return fail('ws_handshake_timeout', 'dns_timeout', `DNS: no answer for ${host} in time (${code})`, code);
  }
  return fail('ws_open_failed', 'dns_failure', `DNS: the resolver failed for ${host} (${code})`, code);
}

const NETWORK_CAUSES: Record<string, FailureCause> = {
  ECONNREFUSED: 'connection_refused',
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  ECONNABORTED: 'connection_reset',
  EHOSTUNREACH: 'host_unreachable',
  ENETUNREACH: 'host_unreachable',
  EHOSTDOWN: 'host_unreachable',
  ETIMEDOUT: 'tcp_connect_timeout',
};

/** TLS verification codes from OpenSSL and Node, by the cause a person would name. */
const TLS_CAUSES: Record<string, FailureCause> = {
  CERT_HAS_EXPIRED: 'tls_cert_expired',
  CERT_NOT_YET_VALID: 'tls_cert_not_yet_valid',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'tls_self_signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'tls_self_signed',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'tls_unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'tls_unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'tls_unknown_ca',
  CERT_UNTRUSTED: 'tls_unknown_ca',
  CERT_SIGNATURE_FAILURE: 'tls_unknown_ca',
  ERR_TLS_CERT_ALTNAME_INVALID: 'tls_hostname_mismatch',
};

const TLS_WORDS: Partial<Record<FailureCause, string>> = {
  tls_cert_expired: 'the certificate has expired',
  tls_cert_not_yet_valid: 'the certificate is not valid yet',
  tls_self_signed: 'the certificate is self-signed',
  tls_unknown_ca: 'the certificate is signed by an unknown authority',
  tls_hostname_mismatch: 'the certificate does not match the host name',
};

export function errorCodeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Maps a socket-level error to the failure it means, before the WebSocket opened. */
export function classifyNetworkError(error: unknown, during: string): ProbeFailureError {
  const code = errorCodeOf(error);
  // OpenSSL errors carry a short `reason`; their message is a multi-line dump.
  const sslReason = (error as { reason?: unknown } | null)?.reason;
  const message =
    code?.startsWith('ERR_SSL') && typeof sslReason === 'string'
      ? sslReason
      : ((error as Error | null)?.message ?? String(error));
  if (code && TLS_CAUSES[code]) return tlsVerificationFailure(code);
  const cause =
    (code && NETWORK_CAUSES[code]) ?? (code?.startsWith('ERR_SSL') ? 'tls_handshake_failed' : undefined);
  if (cause === 'tcp_connect_timeout')
    return fail('ws_handshake_timeout', cause, `${during}: ${message}`, code);
  if (cause) return fail('ws_open_failed', cause, `${during}: ${message}`, code);
  if (/socket hang up/i.test(message)) {
    return fail('ws_open_failed', 'connection_reset', `${during}: the server closed the connection`, code);
  }
  return fail('ws_open_failed', 'network_error', `${during}: ${message}`, code);
}

export function tlsVerificationFailure(code: string): ProbeFailureError {
  const cause = TLS_CAUSES[code] ?? 'tls_handshake_failed';
  const words = TLS_WORDS[cause] ?? 'the certificate could not be verified';
  return fail('ws_open_failed', cause, `TLS: ${words} (${code})`, code);
}

/** Errors ws raises while validating a 101 response. */
export function classifyUpgradeError(error: unknown): ProbeFailureError {
  const message = (error as Error | null)?.message ?? String(error);
  if (/subprotocol/i.test(message)) {
    return fail('ws_open_failed', 'subprotocol_mismatch', `upgrade: ${message}`, errorCodeOf(error));
  }
  if (/Sec-WebSocket|extension|Invalid .* header|Unexpected server response/i.test(message)) {
    return fail('ws_open_failed', 'invalid_upgrade_response', `upgrade: ${message}`, errorCodeOf(error));
  }
  return classifyNetworkError(error, 'upgrade');
}
