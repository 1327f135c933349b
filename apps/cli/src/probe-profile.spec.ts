import { Command } from 'commander';
import { GRAPHQL_TOKEN, startGraphqlServer, type GraphqlServer } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, type CliIo } from './cli-io';
import {
  createProbeCommand,
  probeConfigFromFlags,
  probeInputFromFlags,
  type ProbeFlags,
} from './probe.command';
import { parseProfileOption, withProfileOptions } from './probe-profile';
import { runProgram } from './run-program';

const URL = 'ws://127.0.0.1:9/graphql';

function fakeIo(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text), isTTY: false },
    stderr: { write: (text: string) => err.push(text) },
    env: {},
    readFile: (path) =>
      Object.hasOwn(files, path) ? Promise.resolve(files[path]!) : Promise.reject(new Error(`no ${path}`)),
    readStdin: () => Promise.resolve(''),
    writeFile: () => Promise.reject(new Error('specs of wsmon probe write no file')),
    exitCode: 0,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

async function inputOf(flags: ProbeFlags, files: Record<string, string> = {}) {
  return (await probeInputFromFlags(URL, flags, fakeIo(files).io)).input;
}

describe(parseProfileOption.name, () => {
  it.each([
    ['subscribe.query=subscription { a }', ['subscribe', 'query'], 'subscription { a }'],
    ['notifications=3', ['notifications'], 3],
    ['ping=true', ['ping'], true],
    ['auth={"token":"t"}', ['auth'], { token: 't' }],
    ['params=["newHeads"]', ['params'], ['newHeads']],
    ['passcode="1234"', ['passcode'], '1234'],
    ['passcode={{ secrets.STOMP }}', ['passcode'], '{{ secrets.STOMP }}'],
    ['namespace=/admin', ['namespace'], '/admin'],
    ['send=', ['send'], ''],
  ])('reads %s', (text, path, value) => {
    expect(parseProfileOption(text, 1)).toEqual({ path, value });
  });

  it.each(['no-equals', '=x', 'a..b=1', '__proto__.x=1', 'A=1'])(
    'rejects %s without echoing its value',
    (text) => {
      expect(() => parseProfileOption(text, 2)).toThrow(/--option #2: expected/);
    },
  );

  it('applies options in order onto a copy of the configured ones', () => {
    const fromConfig = { subscribe: { query: 'q1', timeout_ms: 5 }, ping: false };
    const result = withProfileOptions(fromConfig, ['subscribe.query=q2', 'ping=true']);
    expect(result).toEqual({ subscribe: { query: 'q2', timeout_ms: 5 }, ping: true });
    expect(fromConfig.subscribe.query).toBe('q1');
  });
});

describe('wsmon probe --profile', () => {
  it('sets the profile and its options object', async () => {
    expect(
      await inputOf({ profile: 'graphql', option: ['subscribe.query=subscription { a }', 'ping=true'] }),
    ).toEqual({
      url: URL,
      profile: 'graphql',
      graphql: { subscribe: { query: 'subscription { a }' }, ping: true },
    });
  });

  it('takes the profile from --config and merges the options', async () => {
    const file = JSON.stringify({ url: URL, profile: 'stomp', stomp: { login: 'u', passcode: 'p' } });
    expect(await inputOf({ config: 'p.json', option: ['passcode=q'] }, { 'p.json': file })).toMatchObject({
      profile: 'stomp',
      stomp: { login: 'u', passcode: 'q' },
    });
  });

  it('refuses --option without a profile', async () => {
    await expect(inputOf({ option: ['ping=true'] })).rejects.toThrow(UsageError);
  });

  it('points schema errors of the options at --option, without echoing credentials', async () => {
    const error = await probeConfigFromFlags(
      URL,
      { profile: 'stomp', option: ['passcode=bad\nline', 'subscribe.destination='] },
      fakeIo().io,
    ).then(
      () => undefined,
      (e: unknown) => e as UsageError,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect(error!.details).toEqual([
      'stomp.passcode: must not contain line breaks or NUL (a STOMP CONNECT header value) [stomp_header] (--option)',
      'stomp.subscribe.destination: must not be blank [not_blank] (--option)',
    ]);
  });

  it('rejects an unknown profile as commander rejects a choice', async () => {
    const { io, stderr } = fakeIo();
    const program = new Command('wsmon').addCommand(
      createProbeCommand(io, () => Promise.reject(new Error('no'))),
    );
    expect(await runProgram(program, ['probe', URL, '--profile', 'mqtt'], io)).toBe(2);
    expect(stderr()).toContain('mqtt');
  });

  it('reads json_path assertions, with and without a target', async () => {
    expect(
      (
        await inputOf({
          assert: ['json_path.$.data.n equals 5', 'json_path.$.a exists', 'json_path.$.s matches ^ok'],
        })
      ).assertions,
    ).toEqual([
      { type: 'json_path', property: '$.data.n', operator: 'equals', target: 5 },
      { type: 'json_path', property: '$.a', operator: 'exists' },
      { type: 'json_path', property: '$.s', operator: 'matches', target: '^ok' },
    ]);
  });

  describe('against a graphql-ws server', () => {
    let server: GraphqlServer;

    beforeAll(async () => {
      server = await startGraphqlServer();
    });

    afterAll(async () => {
      await server.close();
    });

    it('runs the profile and prints its phases and facts, never the token', async () => {
      const { io, stdout } = fakeIo();
      const program = new Command('wsmon').addCommand(createProbeCommand(io));
      const code = await runProgram(
        program,
        [
          'probe',
          server.url('/graphql/auth'),
          '--profile',
          'graphql',
          '--option',
          `init_payload={"token":"${GRAPHQL_TOKEN}"}`,
          '--option',
          'subscribe.query=subscription { greetings(interval_ms: 5) }',
          '--assert',
          'json_path.$.data.greetings equals "hello 1"',
          '--timeout-ms',
          '3000',
        ],
        io,
      );
      const out = stdout();
      expect(out).toContain('profile       graphql');
      expect(out).toMatch(/✓ connection_init/);
      expect(out).toMatch(/✓ subscribe/);
      expect(out).toContain('protocol: "graphql-transport-ws"');
      expect(out).toContain('PASS');
      expect(out).not.toContain(GRAPHQL_TOKEN);
      expect(code).toBe(0);
    });
  });
});
