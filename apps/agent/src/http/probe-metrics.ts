import type { ProbeConfig, ProbeResult, TlsDetails } from '@wsmon/contracts';
import { gauge, type MetricFamily, type Sample } from '@wsmon/metrics';

/**
 * The phases of `probe_websocket_duration_seconds`. `resolve`, `connect`, `tls`, `processing` and
 * `transfer` are blackbox_exporter's phase names: its websocket prober records `resolve` (name
 * resolution) and `transfer` (the message exchange after the upgrade), and `connect`, `tls` and
 * `processing` (upgrade request written until the response arrived) mean what they mean in its HTTP
 * prober. `round_trip`, `ping` and `close` are wsmon's own: the first message round trip, the first
 * protocol ping until its pong, and the close handshake until the TCP connection closed.
 */
export const WEBSOCKET_PHASES = [
  'resolve',
  'connect',
  'tls',
  'processing',
  'transfer',
  'round_trip',
  'ping',
  'close',
] as const;
export type WebsocketPhase = (typeof WEBSOCKET_PHASES)[number];

/** Milliseconds (the engine's unit, rounded to microseconds) as seconds without float noise. */
export function msToSeconds(ms: number): number {
  return Math.round(ms * 1000) / 1e6;
}

/** Whether the probe waits for a message: blackbox then reports `probe_websocket_failed_due_to_regex`. */
export function expectsMessage(
  config: Pick<ProbeConfig, 'ping_mode' | 'expect_message' | 'steps' | 'assertions'>,
): boolean {
  return (
    config.ping_mode === 'message' ||
    config.expect_message !== undefined ||
    (config.steps?.some((s) => s.type === 'receive') ?? false) ||
    config.assertions.some((a) => a.type === 'received_message')
  );
}

/** The measured phases, in the order they happen; phases that did not happen are left out. */
export function websocketPhaseSeconds(result: ProbeResult): Partial<Record<WebsocketPhase, number>> {
  const t = result.timings;
  const phases: Partial<Record<WebsocketPhase, number>> = {};
  // An IP literal needs no lookup: like blackbox, resolve is then reported as (nearly) nothing.
  if (t.dns_ms !== null || t.tcp_connect_ms !== null) phases.resolve = msToSeconds(t.dns_ms ?? 0);
  if (t.tcp_connect_ms !== null) phases.connect = msToSeconds(t.tcp_connect_ms);
  if (t.tls_handshake_ms !== null) phases.tls = msToSeconds(t.tls_handshake_ms);
  if (t.upgrade_ms !== null) phases.processing = msToSeconds(t.upgrade_ms);
  const exchange = result.steps.filter((s) => s.type !== 'connect' && s.type !== 'disconnect');
  if (t.open_ms !== null && exchange.length > 0) {
    phases.transfer = msToSeconds(exchange.reduce((sum, s) => sum + s.duration_ms, 0));
  }
  if (t.round_trip_ms !== null) phases.round_trip = msToSeconds(t.round_trip_ms);
  if (t.ping_ms !== null) phases.ping = msToSeconds(t.ping_ms);
  if (t.close_ms !== null) phases.close = msToSeconds(t.close_ms);
  return phases;
}

/** Node's `TLSv1.3` in blackbox_exporter's label format, `TLS 1.3`. */
export function tlsVersionLabel(protocol: string | null): string {
  const match = /^TLSv1(?:\.(\d))?$/.exec(protocol ?? '');
  return match ? `TLS 1.${match[1] ?? '0'}` : 'unknown';
}

/** 32-bit FNV-1a of the address text, as blackbox computes `probe_ip_addr_hash`. */
export function ipAddressHash(address: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(address, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Leaf certificate labels in blackbox's formats: hex without colons, DNS names only, comma-joined. */
function chainInfoLabels(certificate: NonNullable<TlsDetails['certificate']>): Record<string, string> {
  const dnsNames = (certificate.subject_alt_names ?? '')
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4));
  const rdns = (name: string) => name.replace(/,\s+(?=[A-Za-z][A-Za-z0-9.]*=)/g, ',');
  return {
    fingerprint_sha256: certificate.fingerprint_sha256.replace(/:/g, '').toLowerCase(),
    subject: rdns(certificate.subject),
    issuer: rdns(certificate.issuer),
    subjectalternative: dnsNames.join(','),
    serialnumber: certificate.serial_number.toLowerCase().replace(/^0+(?=.)/, ''),
  };
}

function tlsFamilies(tls: TlsDetails): MetricFamily[] {
  const families: MetricFamily[] = [];
  if (tls.protocol !== null) {
    families.push(
      gauge('probe_tls_version_info', 'Contains TLS version information', 1, {
        version: tlsVersionLabel(tls.protocol),
      }),
    );
  }
  if (tls.cipher !== null) {
    families.push(
      gauge('probe_tls_cipher_info', 'Contains TLS cipher information', 1, { cipher: tls.cipher }),
    );
  }
  const certificate = tls.certificate;
  if (certificate) {
    const expiry = Math.floor(Date.parse(certificate.valid_to) / 1000);
    families.push(
      gauge('probe_ssl_earliest_cert_expiry', 'Returns earliest SSL cert expiry date', expiry),
      gauge(
        'probe_ssl_last_chain_info',
        'Contains SSL leaf certificate information',
        1,
        chainInfoLabels(certificate),
      ),
    );
  }
  return families;
}

/**
 * The metric families of one probe, named and typed as blackbox_exporter names them, so dashboards
 * and alerts written for blackbox (and for the seed 004 exporter) work unchanged. Every family is a
 * gauge without labels unless noted; a family whose measurement did not happen is left out rather
 * than reported as 0 (a probe that never opened has no connection duration). Sorted by name, as
 * client_golang gathers them.
 *
 * `config` (the probe's validated configuration) decides whether the probe expected a message, which
 * blackbox reports with `probe_websocket_failed_due_to_regex`.
 */
export function probeMetricFamilies(
  result: ProbeResult,
  config?: Pick<ProbeConfig, 'ping_mode' | 'expect_message' | 'steps' | 'assertions'>,
): MetricFamily[] {
  const t = result.timings;
  const opened = t.open_ms !== null;
  const families: MetricFamily[] = [
    gauge('probe_success', 'Displays whether or not the probe was a success', result.success ? 1 : 0),
    gauge(
      'probe_duration_seconds',
      'Returns how long the probe took to complete in seconds',
      msToSeconds(t.total_ms),
    ),
    gauge(
      'probe_dns_lookup_time_seconds',
      'Returns the time taken for probe dns lookup in seconds',
      msToSeconds(t.dns_ms ?? 0),
    ),
    gauge('probe_websocket_up', 'Displays whether the WebSocket connection was successful', opened ? 1 : 0),
    gauge('probe_websocket_status_code', 'Response HTTP status code', result.upgrade?.status_code ?? 0),
    gauge(
      'probe_websocket_connection_upgraded',
      'Indicates if the websocket connection was successfully upgraded',
      opened ? 1 : 0,
    ),
  ];
  if (t.open_ms !== null) {
    families.push(
      gauge(
        'probe_websocket_connection_duration_seconds',
        'Duration of the WebSocket connection establishment',
        msToSeconds(t.open_ms),
      ),
    );
  }

  const phases = websocketPhaseSeconds(result);
  const phaseSamples: Sample[] = WEBSOCKET_PHASES.flatMap((phase) => {
    const seconds = phases[phase];
    return seconds === undefined ? [] : [{ labels: { phase }, value: seconds }];
  });
  if (phaseSamples.length > 0) {
    families.push({
      name: 'probe_websocket_duration_seconds',
      help: 'Duration of websocket request by phase',
      type: 'gauge',
      samples: phaseSamples,
    });
  }

  if (opened && config && expectsMessage(config)) {
    const reason = result.failure?.reason;
    const mismatched =
      reason === 'ws_reply_mismatch' ||
      reason === 'ws_reply_timeout' ||
      result.assertions.some((a) => a.type === 'received_message' && !a.passed);
    families.push(
      gauge(
        'probe_websocket_failed_due_to_regex',
        'Indicates if probe failed due to regex',
        mismatched ? 1 : 0,
      ),
    );
  }

  const { ip_family: family, remote_address: address } = result.connection;
  if (family !== null) {
    families.push(gauge('probe_ip_protocol', 'Specifies whether probe ip protocol is IP4 or IP6', family));
  }
  if (address !== null) {
    families.push(
      gauge(
        'probe_ip_addr_hash',
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        ipAddressHash(address),
      ),
    );
  }
  if (result.tls) families.push(...tlsFamilies(result.tls));

  const roundTripMs = t.round_trip_ms ?? t.ping_ms;
  if (roundTripMs !== null) {
    families.push(
      gauge(
        'probe_wsmon_round_trip_seconds',
        'First round trip after the WebSocket opened: the reply to the first message, else the pong to the first ping',
        msToSeconds(roundTripMs),
      ),
    );
  }
  if (result.failure) {
    const { reason, cause, category } = result.failure;
    families.push(
      gauge('probe_wsmon_failure_info', "Why the probe failed: wsmon's reason, finer cause and category", 1, {
        reason,
        cause,
        category,
      }),
    );
  }
  return families.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
