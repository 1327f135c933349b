import { describe, expect, it } from 'vitest';
import { channelOptions, proxyEnvironment, type ControlPlaneConnection } from './control-plane-channel';

const connection: ControlPlaneConnection = {
  controlPlane: 'cp.internal:443',
  token: 'wsa_channel_spec_0123456789',
  insecure: false,
  tls: { caPem: undefined, serverName: 'cp.example.com', clientCertPem: undefined, clientKeyPem: undefined },
};

describe(proxyEnvironment.name, () => {
  it('maps HTTPS_PROXY and NO_PROXY to the lower-case names grpc-js reads, entries trimmed', () => {
    expect(
      proxyEnvironment({ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'localhost, .internal ,10.0.0.0/8' }),
    ).toEqual({
      https_proxy: 'http://proxy:3128',
      no_proxy: 'localhost,.internal,10.0.0.0/8',
    });
  });

  it('leaves lower-case variables that are set as they are', () => {
    expect(
      proxyEnvironment({
        https_proxy: 'http://a:1',
        HTTPS_PROXY: 'http://b:2',
        no_proxy: 'x',
        NO_PROXY: 'y',
      }),
    ).toEqual({});
    expect(proxyEnvironment({})).toEqual({});
  });
});

describe(channelOptions.name, () => {
  it('keeps the connection alive, verifies the server name given, and honours NO_PROXY=*', () => {
    expect(channelOptions(connection, {})).toMatchObject({
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.ssl_target_name_override': 'cp.example.com',
    });
    expect(channelOptions(connection, { NO_PROXY: '*' })).toMatchObject({ 'grpc.enable_http_proxy': 0 });
    expect(channelOptions(connection, {})).not.toHaveProperty('grpc.enable_http_proxy');
  });
});
