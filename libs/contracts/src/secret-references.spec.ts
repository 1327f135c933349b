import { describe, expect, it } from 'vitest';
import { assertProbeConfig, parseProbeConfig, type ProbeConfig } from './probe-config.schema';
import { SECRET_NAME, parseInput, secretInputSchema } from './resources.schema';
import {
  MissingSecretError,
  resolveSecretReferences,
  SECRET_REFERENCE,
  secretReferences,
  withoutSecretReferences,
} from './secret-references';

// ---------- factories ----------

type Input = Record<string, unknown>;

const WSS_URL = 'wss://stream.example.com/socket';

const ref = (name: string) => `{{ secrets.${name} }}`;

/** A probe configuration as written: the minimal handshake probe with `overrides` on top. */
function probeInput(overrides: Input = {}): Input {
  return { url: WSS_URL, ...overrides };
}

/** A validated probe configuration, as `secretReferences` receives it. */
function config(overrides: Input = {}): ProbeConfig {
  return assertProbeConfig(probeInput(overrides));
}

/** A steps scenario sending each of `messages` in turn, between connect and disconnect. */
function stepsConfig(messages: string[], overrides: Input = {}): ProbeConfig {
  const middle = messages.flatMap((message) => [{ type: 'send', message }, { type: 'receive' }]);
  return config({ steps: [{ type: 'connect' }, ...middle, { type: 'disconnect' }], ...overrides });
}

/** The default form's round trip with `send_message`. */
function messageConfig(send_message: string): ProbeConfig {
  return config({ ping_mode: 'message', send_message });
}

// ---------- the spec ----------

describe(withoutSecretReferences.name, () => {
  it('replaces every reference with the placeholder', () => {
    expect(withoutSecretReferences(`a=${ref('A')}; b=${ref('B')}`)).toBe('a=secret; b=secret');
  });

  it('takes another placeholder', () => {
    expect(withoutSecretReferences(`Bearer ${ref('TOKEN')}`, '***')).toBe('Bearer ***');
  });

  it.each(['{{secrets.X}}', '{{   secrets.X   }}', '{{\tsecrets.X\t}}'])('allows any spacing: %j', (text) => {
    expect(withoutSecretReferences(text)).toBe('secret');
  });

  it.each(['{{ secret.X }}', '{{ secrets.1X }}', '{{ secrets. }}', '{ secrets.X }', '{{ secrets.X-Y }}'])(
    'leaves the malformed reference %j as it is',
    (text) => {
      expect(withoutSecretReferences(text)).toBe(text);
    },
  );

  it('gives the same answer however often it is called (the global pattern keeps no state)', () => {
    const text = `x=${ref('X')}`;
    expect([1, 2, 3].map(() => withoutSecretReferences(text))).toEqual(['x=secret', 'x=secret', 'x=secret']);
    expect(SECRET_REFERENCE.lastIndex).toBe(0);
  });
});

describe('secret references in the probe configuration', () => {
  it('lets cookies with session={{ secrets.SESSION }} pass the cookie rule, kept verbatim', () => {
    const cookies = `session=${ref('SESSION')}`;
    const outcome = parseProbeConfig(probeInput({ cookies }));
    expect(outcome).toMatchObject({ ok: true, value: { cookies } });
  });

  it.each([
    `theme=dark; session=${ref('SESSION')}`,
    `session="${ref('SESSION')}"`,
    'session={{secrets.SESSION}}',
    `a=${ref('A')}; b=${ref('B')}`,
  ])('accepts the cookies %j', (cookies) => {
    expect(parseProbeConfig(probeInput({ cookies })).ok).toBe(true);
  });

  it.each([
    ['a malformed reference', `session={{ secret.SESSION }}`],
    ['a reference without a cookie name', ref('SESSION')],
    ['a reference after a space', `session ${ref('SESSION')}`],
  ])('still applies the cookie rule around %s', (_, cookies) => {
    const outcome = parseProbeConfig(probeInput({ cookies }));
    expect(outcome.ok).toBe(false);
    if (!outcome.ok)
      expect(outcome.errors.map(({ path, rule }) => ({ path, rule }))).toEqual([
        { path: 'cookies', rule: 'cookie_format' },
      ]);
  });
});

describe(secretReferences.name, () => {
  it('finds none in a configuration without references', () => {
    expect(secretReferences(config({ headers: { 'X-Client': 'wsmon' }, cookies: 'a=1' }))).toEqual([]);
  });

  it('finds the names in header values', () => {
    const headers = { Authorization: `Bearer ${ref('API_TOKEN')}`, 'X-Tenant': ref('TENANT') };
    expect(secretReferences(config({ headers }))).toEqual(['API_TOKEN', 'TENANT']);
  });

  it('finds the names in cookies', () => {
    expect(secretReferences(config({ cookies: `theme=dark; session=${ref('SESSION')}` }))).toEqual([
      'SESSION',
    ]);
  });

  it('finds the name in the basic_auth password', () => {
    const basic_auth = { username: 'monitor', password: ref('BASIC_PASSWORD') };
    expect(secretReferences(config({ basic_auth }))).toEqual(['BASIC_PASSWORD']);
  });

  it('finds the names in send_message', () => {
    const message = `{"op":"auth","key":"${ref('WS_KEY')}"}`;
    expect(secretReferences(messageConfig(message))).toEqual(['WS_KEY']);
  });

  it('finds the names in send steps', () => {
    const messages = [`{"op":"auth","key":"${ref('WS_KEY')}"}`, `{"op":"subscribe","sig":"${ref('SIG')}"}`];
    expect(secretReferences(stepsConfig(messages))).toEqual(['SIG', 'WS_KEY']);
  });

  it('finds several references in one text', () => {
    expect(secretReferences(messageConfig(`${ref('USER')}:${ref('PASS')}`))).toEqual(['PASS', 'USER']);
  });

  it('gathers every field, each name once, sorted', () => {
    const probe = config({
      headers: { 'X-Api-Key': ref('API_KEY'), 'X-Again': `${ref('API_KEY')}/${ref('API_KEY')}` },
      cookies: `session=${ref('SESSION')}; again=${ref('API_KEY')}`,
      basic_auth: { username: 'monitor', password: ref('BASIC') },
      steps: [
        { type: 'connect' },
        { type: 'send', message: ref('SESSION') },
        { type: 'send', message: ref('ZULU') },
        { type: 'receive' },
      ],
    });
    expect(secretReferences(probe)).toEqual(['API_KEY', 'BASIC', 'SESSION', 'ZULU']);
  });

  it('finds a name given with any spacing', () => {
    expect(secretReferences(messageConfig('{{secrets.TIGHT}} {{   secrets.LOOSE   }}'))).toEqual([
      'LOOSE',
      'TIGHT',
    ]);
  });

  it.each([
    ['secret instead of secrets', '{{ secret.X }}'],
    ['a name starting with a digit', '{{ secrets.1X }}'],
    ['no name', '{{ secrets. }}'],
    ['single braces', '{ secrets.X }'],
    ['an unclosed reference', '{{ secrets.X'],
    ['a dash in the name', '{{ secrets.X-Y }}'],
    ['upper-case SECRETS', '{{ SECRETS.X }}'],
  ])('ignores a malformed reference: %s', (_, text) => {
    expect(secretReferences(messageConfig(`${text} ${ref('GOOD')}`))).toEqual(['GOOD']);
    expect(secretReferences(config({ headers: { 'X-Key': text } }))).toEqual([]);
  });

  it('finds exactly the names a secret may have', () => {
    const longest = 'S'.repeat(64);
    const tooLong = 'S'.repeat(65);
    expect(SECRET_NAME.test(longest)).toBe(true);
    expect(SECRET_NAME.test(tooLong)).toBe(false);
    expect(parseInput(secretInputSchema, { name: longest, value: 'v' }).ok).toBe(true);
    expect(secretReferences(messageConfig(`${ref(longest)} ${ref(tooLong)}`))).toEqual([longest]);
  });

  it('gives the same answer when called again on the same configuration', () => {
    const probe = config({ headers: { Authorization: `Bearer ${ref('TOKEN')}` } });
    expect(secretReferences(probe)).toEqual(['TOKEN']);
    expect(secretReferences(probe)).toEqual(['TOKEN']);
  });
});

describe(resolveSecretReferences.name, () => {
  const values = new Map([
    ['TOKEN', 't0ken-value'],
    ['SESSION', 'sess-value'],
    ['PASS', 'p@ss'],
  ]);
  const config = (overrides: Record<string, unknown>) =>
    assertProbeConfig({ url: 'wss://x.example/ws', ...overrides });

  it('replaces references in headers, cookies, basic auth and messages, and leaves the input as it was', () => {
    const input = config({
      headers: { 'X-Api-Key': 'Bearer {{ secrets.TOKEN }}', 'X-Plain': 'plain' },
      cookies: 'sid={{secrets.SESSION}}; theme=dark',
      basic_auth: { username: 'me', password: '{{ secrets.PASS }}' },
      ping_mode: 'message',
      send_message: '{"auth":"{{ secrets.TOKEN }}"}',
    });
    const before = JSON.stringify(input);
    const resolved = resolveSecretReferences(input, values);
    expect(resolved.headers).toEqual({ 'X-Api-Key': 'Bearer t0ken-value', 'X-Plain': 'plain' });
    expect(resolved.cookies).toBe('sid=sess-value; theme=dark');
    expect(resolved.basic_auth).toEqual({ username: 'me', password: 'p@ss' });
    expect(resolved.send_message).toBe('{"auth":"t0ken-value"}');
    expect(JSON.stringify(input)).toBe(before);
  });

  it('replaces references in send steps only', () => {
    const resolved = resolveSecretReferences(
      config({
        steps: [
          { type: 'connect' },
          { type: 'send', message: 'login {{ secrets.TOKEN }}' },
          { type: 'receive', expect_message: '{{ secrets.TOKEN }}' },
        ],
      }),
      values,
    );
    expect(resolved.steps?.[1]).toEqual({ type: 'send', message: 'login t0ken-value' });
    expect(resolved.steps?.[2]).toMatchObject({ expect_message: '{{ secrets.TOKEN }}' });
  });

  it('names every secret that has no value', () => {
    const input = config({
      headers: { A: '{{ secrets.GONE }}', B: '{{ secrets.TOKEN }} {{ secrets.ALSO_GONE }}' },
    });
    expect(() => resolveSecretReferences(input, values)).toThrow(
      new MissingSecretError(['ALSO_GONE', 'GONE']),
    );
  });

  it('takes a value containing $ signs literally', () => {
    const resolved = resolveSecretReferences(
      config({ headers: { A: '{{ secrets.X }}' } }),
      new Map([['X', "a$&b$1c$'"]]),
    );
    expect(resolved.headers.A).toBe("a$&b$1c$'");
  });
});

describe('secret references in protocol profiles', () => {
  const profiles = [
    ['stomp', { login: 'u', passcode: ref('STOMP_PASS') }, 'STOMP_PASS'],
    ['socket_io', { auth: { token: ref('SIO_TOKEN'), list: [`Bearer ${ref('SIO_2')}`] } }, 'SIO_TOKEN'],
    ['graphql', { init_payload: { headers: { Authorization: ref('GQL_AUTH') } } }, 'GQL_AUTH'],
  ] as const;

  it.each(profiles)('finds and resolves the references in %s options', (profile, options, name) => {
    const withRefs = config({ profile, [profile]: options });
    expect(secretReferences(withRefs)).toContain(name);
    const values = new Map([
      ['STOMP_PASS', 'p1'],
      ['SIO_TOKEN', 't1'],
      ['SIO_2', 't2'],
      ['GQL_AUTH', 'a1'],
    ]);
    const resolved = resolveSecretReferences(withRefs, values);
    expect(JSON.stringify(resolved)).not.toContain('secrets.');
    expect(JSON.stringify(withRefs)).toContain('secrets.');
    expect(parseProbeConfig(resolved).ok).toBe(true);
  });

  it('resolves the socket.io auth deep inside, keeping its shape', () => {
    const resolved = resolveSecretReferences(
      config({
        profile: 'socket_io',
        socket_io: { auth: { token: ref('A'), list: [`Bearer ${ref('A')}`, 1] } },
      }),
      new Map([['A', 'x']]),
    );
    expect(resolved.socket_io?.auth).toEqual({ token: 'x', list: ['Bearer x', 1] });
  });
});
