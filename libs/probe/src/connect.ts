import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import type { IpVersion, TlsDetails } from '@wsmon/contracts';
import {
  classifyDnsError,
  classifyNetworkError,
  fail,
  ProbeFailureError,
  tlsVerificationFailure,
} from './failure';
import type { HostLookup, ResolvedAddress } from './lookup';
import { TIMED_OUT, waitFor, waitForEvent, type Deadline } from './wait';

/** Resolves the host within the time left; IP literals need no lookup. */
export async function resolveHost(
  host: string,
  ipVersion: IpVersion,
  deadline: Deadline,
  lookup: HostLookup,
  settled: () => void,
): Promise<ResolvedAddress> {
  const outcome = await waitFor<ResolvedAddress>(deadline, (resolve, reject) => {
    const stop = new AbortController();
    lookup(host, ipVersion, stop.signal).then(
      (address) => !stop.signal.aborted && resolve(address),
      (error: unknown) => !stop.signal.aborted && reject(error),
    );
    return () => {
      settled();
      stop.abort();
    };
  }).catch((error: unknown) => {
    throw classifyDnsError(error, host);
  });
  if (outcome === TIMED_OUT) {
    throw fail(
      'ws_handshake_timeout',
      'dns_timeout',
      `DNS lookup of ${host} did not answer within the deadline`,
    );
  }
  return outcome;
}

const ignoreError = () => undefined;

/** Bound on waiting for a destroyed socket's handle to close; it normally takes one loop turn. */
const SOCKET_CLOSE_WAIT_MS = 2000;

/**
 * Resolves when the socket's handle is really closed. `socket.closed` turns true inside
 * destroy(), before libuv has released the handle; only the 'close' event marks that moment,
 * so it is watched from the socket's creation on.
 */
const handleClosed = new WeakSet<Socket>();

function watchClose(socket: Socket): void {
  socket.once('close', () => handleClosed.add(socket));
}

/** Destroys a socket and resolves once its handle is closed, so a finished probe holds nothing. */
export async function destroySocket(socket: Socket): Promise<void> {
  if (!socket.destroyed) socket.destroy();
  if (handleClosed.has(socket)) return;
  await waitFor<true>(SOCKET_CLOSE_WAIT_MS, (resolve) => {
    const onClose = () => resolve(true);
    socket.once('close', onClose);
    return () => socket.off('close', onClose);
  });
}

/** Opens the TCP connection; the socket is destroyed on failure or timeout. */
export async function connectTcp(
  address: ResolvedAddress,
  port: number,
  deadline: Deadline,
  settled: () => void,
): Promise<Socket> {
  const socket = netConnect({ host: address.address, port, family: address.family, noDelay: true });
  watchClose(socket);
  // Late errors after a failed or finished phase must never become uncaught exceptions.
  socket.on('error', ignoreError);
  try {
    const outcome = await waitForEvent(socket, 'connect', deadline, settled);
    if (outcome === TIMED_OUT) {
      throw fail(
        'ws_handshake_timeout',
        'tcp_connect_timeout',
        `TCP connect to ${address.address}:${port} timed out`,
      );
    }
    return socket;
  } catch (error) {
    await destroySocket(socket);
    throw error instanceof ProbeFailureError
      ? error
      : classifyNetworkError(error, `TCP connect to ${address.address}:${port}`);
  }
}

export interface TlsOptions {
  /** The name for SNI and the certificate check; undefined for an IP literal without server_name. */
  readonly serverName: string | undefined;
  /** What the certificate must match: server_name, the host name or the IP literal. */
  readonly identity: string;
  readonly secureContext: SecureContext | undefined;
  readonly skipVerify: boolean;
}

export interface TlsConnection {
  readonly socket: TLSSocket;
  readonly details: TlsDetails;
}

/**
 * Runs the TLS handshake on a connected socket. Verification is done here, before any HTTP
 * byte is written, so credentials in the upgrade request never reach an unverified server,
 * and the certificate is recorded even when it is rejected.
 */
export async function startTls(
  socket: Socket,
  options: TlsOptions,
  deadline: Deadline,
  settled: () => void,
): Promise<TlsConnection> {
  const tlsSocket = tlsConnect({
    socket,
    host: options.identity,
    ...(options.serverName === undefined ? {} : { servername: options.serverName }),
    ...(options.secureContext === undefined ? {} : { secureContext: options.secureContext }),
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
  });
  watchClose(tlsSocket);
  tlsSocket.on('error', ignoreError);
  let outcome: true | typeof TIMED_OUT;
  try {
    outcome = await waitForEvent(tlsSocket, 'secureConnect', deadline, settled);
  } catch (error) {
    await destroySocket(tlsSocket);
    throw classifyNetworkError(error, 'TLS handshake');
  }
  if (outcome === TIMED_OUT) {
    await destroySocket(tlsSocket);
    throw fail(
      'ws_handshake_timeout',
      'tls_handshake_timeout',
      'TLS handshake did not complete within the deadline',
    );
  }
  const details = describeTls(tlsSocket);
  if (!tlsSocket.authorized && !options.skipVerify) {
    await destroySocket(tlsSocket);
    const failure = tlsVerificationFailure(String(tlsSocket.authorizationError ?? 'UNKNOWN'));
    failure.tls = details;
    throw failure;
  }
  return { socket: tlsSocket, details };
}

const DAY_MS = 86_400_000;

function distinguishedName(name: PeerCertificate['subject'] | undefined): string {
  if (!name) return '';
  return Object.entries(name)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

export function describeTls(socket: TLSSocket): TlsDetails {
  const cert = socket.getPeerCertificate(false);
  const hasCert = cert && Object.keys(cert).length > 0;
  const validTo = hasCert ? new Date(cert.valid_to) : null;
  return {
    protocol: socket.getProtocol() ?? null,
    cipher: socket.getCipher()?.name ?? null,
    authorized: socket.authorized,
    authorization_error: socket.authorized ? null : String(socket.authorizationError ?? 'UNKNOWN'),
    certificate:
      hasCert && validTo
        ? {
            subject: distinguishedName(cert.subject),
            issuer: distinguishedName(cert.issuer),
            subject_alt_names: cert.subjectaltname ?? null,
            valid_from: new Date(cert.valid_from).toISOString(),
            valid_to: validTo.toISOString(),
            days_remaining: Math.round(((validTo.getTime() - Date.now()) / DAY_MS) * 100) / 100,
            serial_number: cert.serialNumber,
            fingerprint_sha256: cert.fingerprint256,
          }
        : null,
  };
}
