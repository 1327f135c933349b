import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import type { ProbeConfig, ProbeResult } from '@wsmon/contracts';
import { UsageError, type CliIo } from './cli-io';
import { echoSuccess, http426 } from './fixtures/probe-results';
import {
  createProbeCommand,
  probeConfigFromFlags,
  probeInputFromFlags,
  type ProbeFlags,
  type ProbeRunner,
} from './probe.command';
import { runProgram } from './run-program';

const URL = 'ws://127.0.0.1:9/echo';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const SECRET = 's3cr3t-value-91f2';

interface FakeIo {
  readonly io: CliIo;
  stdout(): string;
  stderr(): string;
}

function fakeIo(
  options: {
    files?: Record<string, string>;
    stdin?: string;
    tty?: boolean;
    env?: Record<string, string>;
  } = {},
): FakeIo {
  const out: string[] = [];
  const err: string[] = [];
  const files = options.files ?? {};
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text), isTTY: options.tty ?? false },
    stderr: { write: (text: string) => err.push(text) },
    env: options.env ?? {},
    readFile: (path) =>
      Object.hasOwn(files, path)
        ? Promise.resolve(files[path]!)
        : Promise.reject(
            Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' }),
          ),
    readStdin: () => Promise.resolve(options.stdin ?? ''),
    writeFile: () => Promise.reject(new Error('specs of wsmon probe write no file')),
    exitCode: 0,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

/** The input object the flags translate to, before validation. */
async function inputOf(args: {
  url?: string;
  flags?: ProbeFlags;
  files?: Record<string, string>;
  stdin?: string;
}) {
  const { io } = fakeIo({ files: args.files, stdin: args.stdin });
  return (await probeInputFromFlags(args.url, args.flags ?? {}, io)).input;
}

async function usageErrorOf(promise: Promise<unknown>): Promise<UsageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  return error as UsageError;
}

describe('probeInputFromFlags: each flag sets its configuration field', () => {
  it('the url argument alone', async () => {
    expect(await inputOf({ url: URL })).toEqual({ url: URL });
  });

  it.each<[string, ProbeFlags, Record<string, unknown>]>([
    ['--timeout-ms', { timeoutMs: '2500' }, { timeout_ms: 2500 }],
    ['--timeout-ms (not a number, left to the schema)', { timeoutMs: 'soon' }, { timeout_ms: 'soon' }],
    ['--interpretation', { interpretation: 'connection_success' }, { interpretation: 'connection_success' }],
    ['--ping-mode', { pingMode: 'protocol' }, { ping_mode: 'protocol' }],
    ['--send (implies ping_mode message)', { send: 'hi' }, { send_message: 'hi', ping_mode: 'message' }],
    ['--send with --ping-mode', { send: 'hi', pingMode: 'none' }, { send_message: 'hi', ping_mode: 'none' }],
    ['--expect', { expect: 'pong' }, { expect_message: 'pong' }],
    ['--protocol, repeated and comma-separated', { protocol: ['a', 'b, c'] }, { protocols: ['a', 'b', 'c'] }],
    [
      '-H, --header',
      { header: ['Authorization: Bearer a:b', 'X-Empty:', 'X-Trim:   v  '] },
      { headers: { Authorization: 'Bearer a:b', 'X-Empty': '', 'X-Trim': 'v' } },
    ],
    ['--cookie, repeated', { cookie: ['a=1; b=2', 'c=3'] }, { cookies: 'a=1; b=2; c=3' }],
    [
      '--basic-auth (split at the first colon)',
      { basicAuth: 'u:p:w' },
      { basic_auth: { username: 'u', password: 'p:w' } },
    ],
    [
      '--basic-auth with an empty password',
      { basicAuth: 'u:' },
      { basic_auth: { username: 'u', password: '' } },
    ],
    ['--origin', { origin: 'https://app.example.com' }, { origin: 'https://app.example.com' }],
    ['--ip-version', { ipVersion: 'ipv6' }, { ip_version: 'ipv6' }],
    ['--tls-skip-verify', { tlsSkipVerify: true }, { tls: { skip_verify: true } }],
    ['-k, --insecure', { insecure: true }, { tls: { skip_verify: true } }],
    ['--tls-server-name', { tlsServerName: 'api.example.com' }, { tls: { server_name: 'api.example.com' } }],
    [
      '--assert, repeated',
      { assert: ['response_time.connect less_than 500', 'close_code is 1000'] },
      {
        assertions: [
          { type: 'response_time', property: 'connect', operator: 'less_than', target: 500 },
          { type: 'close_code', operator: 'is', target: 1000 },
        ],
      },
    ],
    [
      '--step, starting with connect',
      { step: ['connect=300', 'ping', 'disconnect'] },
      { steps: [{ type: 'connect', within_ms: 300 }, { type: 'ping' }, { type: 'disconnect' }] },
    ],
    [
      '--step, with connect added in front',
      { step: ['send=hi', '{"type":"receive","timeout_ms":500}'] },
      { steps: [{ type: 'connect' }, { type: 'send', message: 'hi' }, { type: 'receive', timeout_ms: 500 }] },
    ],
  ])('%s', async (_flag, flags, fields) => {
    expect(await inputOf({ url: URL, flags })).toEqual({ url: URL, ...fields });
  });

  it('--tls-ca reads the PEM file into tls.ca_pem', async () => {
    const input = await inputOf({
      url: 'wss://h/',
      flags: { tlsCa: 'ca.pem', insecure: true },
      files: { 'ca.pem': PEM },
    });
    expect(input.tls).toEqual({ skip_verify: true, ca_pem: PEM });
  });

  it('leaves out every field no flag gave, so the schema applies its defaults', async () => {
    const { io } = fakeIo();
    const config = await probeConfigFromFlags(URL, {}, io);
    expect(config).toMatchObject({
      timeout_ms: 10_000,
      interpretation: 'handshake_latency',
      ping_mode: 'none',
      protocols: [],
      headers: {},
      ip_version: 'any',
      assertions: [],
    });
    expect(config.steps).toBeUndefined();
  });
});

describe('probeInputFromFlags: --config', () => {
  const file = {
    url: 'ws://file.example/a',
    timeout_ms: 5000,
    headers: { authorization: 'Bearer from-file', 'X-Keep': 'kept' },
    tls: { server_name: 'file.example' },
    protocols: ['from-file'],
    assertions: [{ type: 'close_code', operator: 'is', target: 1000 }],
  };
  const files = { 'probe.json': JSON.stringify(file) };

  it('reads a whole configuration from a file', async () => {
    expect(await inputOf({ flags: { config: 'probe.json' }, files })).toEqual(file);
  });

  it('reads it from standard input with -', async () => {
    expect(await inputOf({ flags: { config: '-' }, stdin: JSON.stringify(file) })).toEqual(file);
  });

  it('lets flags override its fields: scalars, headers by name (any case), tls by field, lists whole', async () => {
    const input = await inputOf({
      url: 'ws://flag.example/b',
      flags: {
        config: 'probe.json',
        timeoutMs: '700',
        header: ['Authorization: Bearer from-flag'],
        insecure: true,
        protocol: ['p1'],
        assert: ['subprotocol is p1'],
      },
      files,
    });
    expect(input).toEqual({
      url: 'ws://flag.example/b',
      timeout_ms: 700,
      headers: { 'X-Keep': 'kept', Authorization: 'Bearer from-flag' },
      tls: { server_name: 'file.example', skip_verify: true },
      protocols: ['p1'],
      assertions: [{ type: 'subprotocol', operator: 'is', target: 'p1' }],
    });
  });

  it('validates the file with the shared schema like any API', async () => {
    const { io } = fakeIo({ files: { 'p.json': '{"url":"ws://h/","tls":{"skip_verify":true},"extra":1}' } });
    const error = await usageErrorOf(probeConfigFromFlags(undefined, { config: 'p.json' }, io));
    expect(error.details).toEqual([
      'extra: is not a known field [unknown_field]',
      'tls: only applies to wss:// URLs [requires_wss]',
    ]);
  });
});

describe('probeInputFromFlags: usage errors', () => {
  const { io } = fakeIo({
    files: { 'empty.json': '{}', 'list.json': '[1]', 'bad.json': `{"headers":{"Authorization":"${SECRET}"` },
  });

  it.each<[string, string | undefined, ProbeFlags, RegExp]>([
    ['a missing URL', undefined, {}, /^missing URL/],
    ['a missing URL in --config', undefined, { config: 'empty.json' }, /^missing URL/],
    [
      'an empty standard input for --config -',
      undefined,
      { config: '-' },
      /^--config: standard input is not valid JSON/,
    ],
    [
      'an unreadable --config',
      undefined,
      { config: 'nope.json' },
      /^--config: cannot read nope.json \(ENOENT\)$/,
    ],
    ['a --config that is not an object', undefined, { config: 'list.json' }, /must hold a JSON object/],
    [
      'a --config that is not JSON',
      undefined,
      { config: 'bad.json' },
      /^--config: bad.json is not valid JSON \(at position \d+\)$/,
    ],
    ['an unreadable --tls-ca', 'wss://h/', { tlsCa: 'ca.pem' }, /^--tls-ca: cannot read ca.pem \(ENOENT\)$/],
    [
      'a header without a colon',
      URL,
      { header: ['X-Ok: 1', `Bearer ${SECRET}`] },
      /^-H\/--header #2: expected "Name: value"$/,
    ],
    [
      'a header without a name',
      URL,
      { header: [`: ${SECRET}`] },
      /^-H\/--header #1: expected "Name: value"$/,
    ],
    [
      'a header given twice',
      URL,
      { header: ['X-A: 1', `x-a: ${SECRET}`] },
      /^-H\/--header: "x-a" is given twice/,
    ],
    ['--basic-auth without a colon', URL, { basicAuth: SECRET }, /^--basic-auth: expected user:password$/],
    ['a malformed --assert', URL, { assert: ['close_code is 1000', 'close_code'] }, /^--assert #2: expected/],
    ['an unknown --step', URL, { step: ['ping', 'jump'] }, /^--step #2: unknown step "jump"/],
  ])('%s', async (_case, url, flags, message) => {
    const error = await usageErrorOf(probeInputFromFlags(url, flags, io));
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain(SECRET);
  });
});

describe('probeConfigFromFlags: the shared schema decides', () => {
  it('returns the validated configuration', async () => {
    const { io } = fakeIo();
    const config = await probeConfigFromFlags(
      URL,
      { send: 'ping', expect: 'pong', interpretation: 'round_trip_latency' },
      io,
    );
    expect(config).toMatchObject({ ping_mode: 'message', send_message: 'ping', expect_message: 'pong' });
  });

  it('lists every field error as "path: message [rule]", pointing at the flag it came from', async () => {
    const { io } = fakeIo();
    const error = await usageErrorOf(
      probeConfigFromFlags(
        'http://h/',
        {
          timeoutMs: '99999',
          assert: ['close_code is 1000', 'response_time.total less_than soon'],
          step: ['send=x', 'hold=abc'],
          header: [`Connection: ${SECRET}`],
        },
        io,
      ),
    );
    expect(error.message).toBe('invalid probe configuration, nothing was probed:');
    expect(error.details).toEqual([
      'url: must start with ws:// or wss:// (got http://) [ws_scheme] (the url argument)',
      'timeout_ms: must be at most 30000 [max] (--timeout-ms)',
      'headers.Connection: is set by the WebSocket handshake itself [reserved_header] (-H)',
      'assertions[1].target: must be a number [type] (--assert #2)',
      'steps[2].duration_ms: must be a number [type] (--step #2)',
    ]);
    expect(JSON.stringify(error.details)).not.toContain(SECRET);
  });

  it('reports cross-field rules, such as --expect without a message to send', async () => {
    const { io } = fakeIo();
    const error = await usageErrorOf(probeConfigFromFlags(URL, { expect: 'pong' }, io));
    expect(error.details).toEqual([
      'expect_message: only applies when ping_mode is message [requires_ping_mode_message] (--expect)',
    ]);
  });

  it('reports --send together with --step as a conflict rather than guessing', async () => {
    const { io } = fakeIo();
    const error = await usageErrorOf(probeConfigFromFlags(URL, { send: 'x', step: ['ping'] }, io));
    expect(error.details).toEqual([
      'send_message: cannot be combined with steps; use send and receive steps [conflicts_with_steps] (--send)',
      'ping_mode: cannot be combined with steps; use send and receive steps [conflicts_with_steps] (--send)',
    ]);
  });

  it('never prints the value of a header, a cookie or a password, even when rejecting it', async () => {
    const { io } = fakeIo();
    const error = await usageErrorOf(
      probeConfigFromFlags(
        URL,
        {
          header: [`X-Token: ${SECRET}\u0001`, `Authorization: Bearer ${SECRET}`],
          cookie: [`bad cookie ${SECRET}`],
          basicAuth: `us:er:${SECRET}`,
        },
        io,
      ),
    );
    expect(error.details.length).toBeGreaterThan(0);
    expect(`${error.message}${error.details.join('\n')}`).not.toContain(SECRET);
  });
});

describe('wsmon probe (the command)', () => {
  async function probe(
    args: string[],
    options: { result?: ProbeResult; tty?: boolean; env?: Record<string, string>; stdin?: string } = {},
  ) {
    const fake = fakeIo({ tty: options.tty, env: options.env, stdin: options.stdin });
    const runner = vi.fn<ProbeRunner>((_config: ProbeConfig) =>
      Promise.resolve(options.result ?? echoSuccess()),
    );
    const program = new Command('wsmon').addCommand(createProbeCommand(fake.io, runner));
    const code = await runProgram(program, ['probe', ...args], fake.io);
    return { code, runner, stdout: fake.stdout(), stderr: fake.stderr() };
  }

  it('exits 0 for a healthy probe and prints the waterfall and verdict', async () => {
    const { code, runner, stdout, stderr } = await probe([URL, '--send', 'hello']);
    expect(code).toBe(0);
    expect(runner).toHaveBeenCalledOnce();
    expect(runner.mock.calls[0]?.[0]).toMatchObject({
      url: URL,
      ping_mode: 'message',
      send_message: 'hello',
    });
    expect(stdout).toContain('  open ');
    expect(stdout).toMatch(/\nPASS {2}handshake_latency = 1\.93 ms\n$/);
    expect(stderr).toBe('');
  });

  it('exits 1 for a failed probe', async () => {
    const { code, stdout } = await probe([URL], { result: http426() });
    expect(code).toBe(1);
    expect(stdout).toContain('FAIL  ws_open_failed · http_unexpected_status [INVALID_REQUEST]');
  });

  it('prints only the ProbeResult as JSON with --json', async () => {
    const { code, stdout } = await probe([URL, '--json'], { result: http426() });
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toEqual(http426());
    expect(stdout).toBe(`${JSON.stringify(http426(), null, 2)}\n`);
  });

  it('colours only a terminal without NO_COLOR', async () => {
    expect((await probe([URL])).stdout).not.toContain('\u001b[');
    expect((await probe([URL], { tty: true })).stdout).toContain('\u001b[');
    expect((await probe([URL], { tty: true, env: { NO_COLOR: '1' } })).stdout).not.toContain('\u001b[');
  });

  it('reads --config - from standard input', async () => {
    const { code, runner } = await probe(['--config', '-', '--timeout-ms', '900'], {
      stdin: JSON.stringify({ url: URL, ping_mode: 'protocol' }),
    });
    expect(code).toBe(0);
    expect(runner.mock.calls[0]?.[0]).toMatchObject({ url: URL, ping_mode: 'protocol', timeout_ms: 900 });
  });

  it.each<[string, string[], RegExp]>([
    [
      'an unknown flag',
      [URL, '--bogus'],
      /^wsmon: unknown option '--bogus'\n\(run "wsmon probe --help" for usage\)\n$/,
    ],
    ['a missing URL', [], /^wsmon: missing URL/],
    ['an extra argument', [URL, 'extra'], /^wsmon: too many arguments for 'probe'/],
    [
      'a value outside the choices',
      [URL, '--ping-mode', 'pong'],
      /argument 'pong' is invalid\. Allowed choices are none, message, protocol/,
    ],
    ['a flag without its value', [URL, '--timeout-ms'], /option '--timeout-ms <ms>' argument missing/],
    [
      'a configuration the schema rejects',
      ['wss://h/#frag', '--timeout-ms', '5'],
      /^wsmon: invalid probe configuration, nothing was probed:\n {2}url: must not contain a #fragment \[no_fragment\] \(the url argument\)\n {2}timeout_ms: must be at least 100 \[min\] \(--timeout-ms\)\n$/,
    ],
  ])('exits 2 without probing on %s', async (_case, args, stderr) => {
    const result = await probe(args);
    expect(result.code).toBe(2);
    expect(result.runner).not.toHaveBeenCalled();
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(stderr);
  });

  it('exits 2 without probing, and prints nothing on stdout, with --json too', async () => {
    const result = await probe(['ftp://h/', '--json']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('url: must start with ws:// or wss:// (got ftp://) [ws_scheme]');
  });

  it('never echoes secrets from the command line in usage errors', async () => {
    const result = await probe([
      'http://h/',
      '-H',
      `Authorization: Bearer ${SECRET}`,
      '--cookie',
      `session=${SECRET}`,
      '--basic-auth',
      `user:${SECRET}`,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'headers.Authorization: is also set by basic_auth; keep one [conflict] (-H)',
    );
    expect(result.stderr + result.stdout).not.toContain(SECRET);
  });

  it('shows the flags, the shorthand grammars and the examples in --help, and exits 0', async () => {
    const { code, stdout } = await probe(['--help']);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, ' ');
    for (const text of [
      '--timeout-ms <ms>',
      '--interpretation <name>',
      '--ping-mode <mode>',
      '--send <text>',
      'sets --ping-mode message unless --ping-mode is given',
      '--expect <substring>',
      '--protocol <name>',
      '-H, --header <header>',
      '--cookie <cookies>',
      '--basic-auth <user:password>',
      '--origin <origin>',
      '--ip-version <version>',
      '--tls-skip-verify',
      '-k, --insecure',
      '--tls-ca <file>',
      '--tls-server-name <name>',
      '--assert <assertion>',
      '--step <spec>',
      '--config <file>',
      '--json',
      'hold=<duration_ms>[:<min_messages>]',
      'disconnect[=<expected_close_code>]',
      'response_time.<connect|round_trip|total> less_than <ms>',
      'Exit codes: 0 healthy, 1 the probe failed, 2',
      '--send hello --expect hello',
      '--ping-mode protocol',
      '--step hold=5000:3',
      '--config - --json',
    ]) {
      expect(help).toContain(text);
    }
  });
});
