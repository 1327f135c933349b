import { EnvironmentError } from '@wsmon/contracts';
import { describe, expect, it } from 'vitest';
import { AgentUsageError, loadAgentConfig } from './agent-config';

const TOKEN = 'wsa_0123456789ab_' + 'x'.repeat(43);
const env = (overrides: Record<string, string> = {}) => ({
  WSMON_CONTROL_PLANE: 'control.example.com:443',
  WSMON_TOKEN: TOKEN,
  ...overrides,
});
const files: Record<string, string> = { '/ca.pem': 'CA PEM', '/cert.pem': 'CERT PEM', '/key.pem': 'KEY PEM' };
const readFile = (path: string) => {
  const content = files[path];
  if (content === undefined) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
  return content;
};

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof EnvironmentError) return [...error.problems];
    throw error;
  }
  throw new Error('accepted');
}

describe(loadAgentConfig.name, () => {
  it('applies the defaults: TLS on, port 9095 on loopback, concurrency 50', () => {
    const config = loadAgentConfig(env(), [], readFile);
    expect(config).toMatchObject({
      controlPlane: 'control.example.com:443',
      token: TOKEN,
      insecure: false,
      httpHost: '127.0.0.1',
      httpPort: 9095,
      concurrency: 50,
      spoolMaxBytes: 256 * 1024 * 1024,
      probeModulesPath: undefined,
      debug: false,
    });
    expect(config.dataDir).toMatch(/\.wsmon-agent$/);
  });

  it('reads the CA, the server name and a client certificate', () => {
    const config = loadAgentConfig(
      env({
        WSMON_TLS_CA: '/ca.pem',
        WSMON_TLS_SERVER_NAME: 'cp.internal',
        WSMON_TLS_CERT: '/cert.pem',
        WSMON_TLS_KEY: '/key.pem',
      }),
      [],
      readFile,
    );
    expect(config.tls).toEqual({
      caPem: 'CA PEM',
      serverName: 'cp.internal',
      clientCertPem: 'CERT PEM',
      clientKeyPem: 'KEY PEM',
    });
  });

  it('lets flags override the environment', () => {
    const config = loadAgentConfig(
      env(),
      ['--control-plane', '127.0.0.1:50051', '--insecure', '--http-port=0', '--concurrency', '8', '--debug'],
      readFile,
    );
    expect(config).toMatchObject({
      controlPlane: '127.0.0.1:50051',
      insecure: true,
      httpPort: 0,
      concurrency: 8,
      debug: true,
    });
  });

  it('bounds the spool and takes a modules file', () => {
    const config = loadAgentConfig(
      env({ WSMON_AGENT_SPOOL_MAX_BYTES: String(8 * 1024 * 1024) }),
      ['--probe-modules', '/etc/wsmon/modules.json'],
      readFile,
    );
    expect(config).toMatchObject({
      spoolMaxBytes: 8 * 1024 * 1024,
      probeModulesPath: '/etc/wsmon/modules.json',
    });
    expect(
      problems(() => loadAgentConfig(env({ WSMON_AGENT_SPOOL_MAX_BYTES: '1000' }), [], readFile)),
    ).toEqual(['WSMON_AGENT_SPOOL_MAX_BYTES: must be at least 1048576 (got "1000")']);
  });

  it('names every bad variable and never echoes the token', () => {
    const found = problems(() =>
      loadAgentConfig(
        {
          WSMON_CONTROL_PLANE: 'no-port',
          WSMON_TOKEN: 'short-secret',
          WSMON_AGENT_CONCURRENCY: '0',
          WSMON_INSECURE: 'yes',
        },
        [],
        readFile,
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^WSMON_CONTROL_PLANE: must be host:port with a port.*\(got "no-port"\)$/),
        expect.stringMatching(/^WSMON_TOKEN: must be the location token/),
        expect.stringMatching(/^WSMON_AGENT_CONCURRENCY: must be at least 1/),
        expect.stringMatching(/^WSMON_INSECURE: must be one of/),
      ]),
    );
    expect(found).toHaveLength(4);
    expect(found.join('\n')).not.toContain('short-secret');
  });

  it('requires the token and the control plane', () => {
    expect(problems(() => loadAgentConfig({}, [], readFile))).toEqual([
      'WSMON_CONTROL_PLANE: is required',
      'WSMON_TOKEN: is required',
    ]);
  });

  it('refuses half a client certificate and plaintext mixed with TLS settings', () => {
    expect(problems(() => loadAgentConfig(env({ WSMON_TLS_CERT: '/cert.pem' }), [], readFile))).toEqual([
      'WSMON_TLS_KEY: a client certificate needs both WSMON_TLS_CERT and WSMON_TLS_KEY',
    ]);
    expect(
      problems(() => loadAgentConfig(env({ WSMON_INSECURE: '1', WSMON_TLS_CA: '/ca.pem' }), [], readFile)),
    ).toEqual(['WSMON_INSECURE: conflicts with the TLS settings given (got "1")']);
  });

  it('refuses unknown flags, a flag without its value, a token flag and an unreadable file', () => {
    expect(() => loadAgentConfig(env(), ['--bogus'], readFile)).toThrow(AgentUsageError);
    expect(() => loadAgentConfig(env(), ['--data-dir'], readFile)).toThrow('--data-dir needs a value');
    expect(() => loadAgentConfig(env(), ['--token', TOKEN], readFile)).toThrow(
      /WSMON_TOKEN in the environment/,
    );
    expect(() => loadAgentConfig(env({ WSMON_TLS_CA: '/nope.pem' }), [], readFile)).toThrow(
      'WSMON_TLS_CA: cannot read /nope.pem (ENOENT)',
    );
  });
});
