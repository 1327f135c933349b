import { credentials, Metadata, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { AgentServiceClient } from '@wsmon/proto/agent';
import type { AgentConfig } from '../config/agent-config';

/** What the channel to the control plane needs of the agent's configuration. */
export type ControlPlaneConnection = Pick<AgentConfig, 'controlPlane' | 'token' | 'insecure' | 'tls'>;

/** Keepalive pings find a dead connection (a NAT that forgot it, a proxy that dropped it) within ~30 s. */
const KEEPALIVE_TIME_MS = 20_000;
const KEEPALIVE_TIMEOUT_MS = 10_000;
/** Snapshots come in messages under gRPC's 4 MiB; the agent takes more rather than fail on a big one. */
const MAX_RECEIVE_BYTES = 16 * 1024 * 1024;

/**
 * The proxy variables grpc-js reads are lower-case only (`grpc_proxy`, `https_proxy`, `http_proxy`,
 * `no_grpc_proxy`, `no_proxy`; see @grpc/grpc-js `http_proxy.js`), while many deployments set
 * `HTTPS_PROXY` and `NO_PROXY`. This copies the upper-case ones to the lower-case names grpc-js reads
 * (a lower-case variable that is set wins, as in curl), with the `NO_PROXY` entries trimmed (grpc-js
 * matches each entry as a suffix of the host, spaces included). Returns the variables to set.
 * `HTTP_PROXY` is not mapped: the control plane is reached over TLS, and CGI-style environments
 * let a request set it (httpoxy).
 */
export function proxyEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const mapped: Record<string, string> = {};
  if (!env.https_proxy && env.HTTPS_PROXY) mapped.https_proxy = env.HTTPS_PROXY;
  const noProxy = env.no_proxy || env.NO_PROXY;
  if (noProxy) {
    const entries = noProxy
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    const normalised = entries.join(',');
    if (normalised !== env.no_proxy) mapped.no_proxy = normalised;
  }
  return mapped;
}

/** `NO_PROXY=*`, which grpc-js does not understand, means no proxy at all. */
function proxyDisabled(env: NodeJS.ProcessEnv): boolean {
  return (env.no_grpc_proxy || env.no_proxy || env.NO_PROXY || '').split(',').some((e) => e.trim() === '*');
}

/** TLS by default (the CA, a server name to verify, a client certificate); plaintext only when `insecure`. */
export function channelCredentials(connection: ControlPlaneConnection): ChannelCredentials {
  if (connection.insecure) return credentials.createInsecure();
  const { caPem, clientCertPem, clientKeyPem } = connection.tls;
  return credentials.createSsl(
    caPem === undefined ? null : Buffer.from(caPem),
    clientKeyPem === undefined ? null : Buffer.from(clientKeyPem),
    clientCertPem === undefined ? null : Buffer.from(clientCertPem),
  );
}

export function channelOptions(connection: ControlPlaneConnection, env: NodeJS.ProcessEnv): ChannelOptions {
  return {
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
    ...(connection.tls.serverName === undefined || connection.insecure
      ? {}
      : { 'grpc.ssl_target_name_override': connection.tls.serverName }),
    ...(proxyDisabled(env) ? { 'grpc.enable_http_proxy': 0 } : {}),
  };
}

/**
 * The client of the control plane's AgentService. grpc-js reads the proxy variables when the channel
 * is created: the upper-case ones are mapped into `env` (the process's environment) first.
 */
export function createAgentServiceClient(
  connection: ControlPlaneConnection,
  env: NodeJS.ProcessEnv = process.env,
): AgentServiceClient {
  Object.assign(env, proxyEnvironment(env));
  return new AgentServiceClient(
    connection.controlPlane,
    channelCredentials(connection),
    channelOptions(connection, env),
  );
}

/** The call's metadata: the location's agent token as a bearer credential. */
export function bearerMetadata(token: string): Metadata {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}
