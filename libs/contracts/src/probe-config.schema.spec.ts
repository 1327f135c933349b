import { describe, expect, it } from 'vitest';
import { ConfigValidationError, type ConfigFieldError } from './config-errors';
import {
  ASSERTION_TYPES,
  INTERPRETATIONS,
  IP_VERSIONS,
  JSON_PATH_OPERATORS,
  MAX_ASSERTIONS,
  MAX_CLOSE_REASON_BYTES,
  MAX_MESSAGE_CHARS,
  MAX_PING_PAYLOAD_BYTES,
  MAX_PROTOCOLS,
  MAX_STEPS,
  PING_MODES,
  RESPONSE_TIME_PROPERTIES,
  STRING_OPERATORS,
  TIMEOUT_MS,
  assertProbeConfig,
  parseProbeConfig,
  type AssertionType,
  type ProbeConfig,
} from './probe-config.schema';

// ---------- factories ----------

type Input = Record<string, unknown>;

const WSS_URL = 'wss://stream.example.com/socket';
const WS_URL = 'ws://stream.example.com/socket';

/** A valid probe configuration: the seed's minimal handshake probe, with `overrides` on top. */
function probeConfig(overrides: Input = {}): Input {
  return { url: WSS_URL, ...overrides };
}

/** The seed's round-trip form: ping_mode message with a message to send. */
function roundTripConfig(overrides: Input = {}): Input {
  return probeConfig({
    interpretation: 'round_trip_latency',
    ping_mode: 'message',
    send_message: '{"op":"ping"}',
    ...overrides,
  });
}

/** A valid assertion of each type, to be overridden field by field. */
const VALID_ASSERTION: Record<AssertionType, Input> = {
  response_time: { type: 'response_time', operator: 'less_than', property: 'connect', target: 500 },
  received_message: { type: 'received_message', operator: 'contains', target: 'pong' },
  header: { type: 'header', operator: 'is', property: 'Server', target: 'nginx' },
  close_code: { type: 'close_code', operator: 'is', target: 1000 },
  subprotocol: { type: 'subprotocol', operator: 'is', target: 'graphql-ws' },
  certificate_days_remaining: { type: 'certificate_days_remaining', operator: 'greater_than', target: 14 },
  json_path: { type: 'json_path', operator: 'equals', property: '$.op', target: 'pong' },
};

function assertion(type: AssertionType = 'received_message', overrides: Input = {}): Input {
  return { ...VALID_ASSERTION[type], ...overrides };
}

const step = {
  connect: (o: Input = {}): Input => ({ type: 'connect', ...o }),
  send: (o: Input = {}): Input => ({ type: 'send', message: '{"op":"subscribe"}', ...o }),
  receive: (o: Input = {}): Input => ({ type: 'receive', ...o }),
  ping: (o: Input = {}): Input => ({ type: 'ping', ...o }),
  hold: (o: Input = {}): Input => ({ type: 'hold', duration_ms: 1000, ...o }),
  disconnect: (o: Input = {}): Input => ({ type: 'disconnect', ...o }),
};

/** A steps scenario: connect, the given middle steps, disconnect. */
function stepsConfig(middle: Input[], overrides: Input = {}): Input {
  return probeConfig({ steps: [step.connect(), ...middle, step.disconnect()], ...overrides });
}

// ---------- expectations ----------

interface Expected {
  path: string;
  rule: string;
}

const byPathAndRule = (a: Expected, b: Expected) =>
  a.path.localeCompare(b.path) || a.rule.localeCompare(b.rule);

/** Parses `input` expecting success; a failure shows the errors. */
function parsed(input: unknown): ProbeConfig {
  const outcome = parseProbeConfig(input);
  if (!outcome.ok) throw new Error(`expected a valid config, got ${JSON.stringify(outcome.errors, null, 2)}`);
  return outcome.value;
}

/** Parses `input` expecting failure; every error's message must start with its path. */
function errorsOf(input: unknown): readonly ConfigFieldError[] {
  const outcome = parseProbeConfig(input);
  if (outcome.ok) throw new Error(`expected errors, got the config ${JSON.stringify(outcome.value)}`);
  for (const error of outcome.errors) {
    expect(error.message.startsWith(`${error.path}: `), error.message).toBe(true);
  }
  return outcome.errors;
}

/** Exactly these errors (path and rule), in any order. */
function expectErrors(input: unknown, ...expected: Expected[]): readonly ConfigFieldError[] {
  const errors = errorsOf(input);
  const actual = errors.map(({ path, rule }) => ({ path, rule }));
  expect(actual.sort(byPathAndRule)).toEqual([...expected].sort(byPathAndRule));
  return errors;
}

/** Exactly one error, with this path and rule; returns it. */
function expectError(input: unknown, path: string, rule: string): ConfigFieldError {
  const [error] = expectErrors(input, { path, rule });
  if (!error) throw new Error('unreachable: expectErrors checked the count');
  return error;
}

const DEFAULTS = {
  timeout_ms: 10_000,
  interpretation: 'handshake_latency',
  ping_mode: 'none',
  protocols: [],
  headers: {},
  ip_version: 'any',
  assertions: [],
} as const;

const PEM =
  '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUFakeButShapedLikeACertificate\n-----END CERTIFICATE-----\n';

// ---------- the spec ----------

describe(parseProbeConfig.name, () => {
  describe('defaults and the reference examples', () => {
    it('applies every default to a minimal {url}', () => {
      expect(parsed({ url: WSS_URL })).toEqual({ url: WSS_URL, ...DEFAULTS });
    });

    it('matches the documented default and bounds of timeout_ms', () => {
      expect(TIMEOUT_MS).toEqual({ default: 10_000, min: 100, max: 30_000 });
    });

    it('parses the seed handshake-latency example unchanged', () => {
      const example = probeConfig({ interpretation: 'handshake_latency', timeout_ms: 10_000 });
      expect(parsed(example)).toEqual({ ...DEFAULTS, ...example });
    });

    it('parses the seed round-trip example unchanged', () => {
      const example = roundTripConfig({ expect_message: '"op":"pong"', timeout_ms: 10_000 });
      expect(parsed(example)).toEqual({ ...DEFAULTS, ...example });
    });

    it('keeps values that differ from the defaults', () => {
      const config = probeConfig({
        timeout_ms: 2500,
        interpretation: 'connection_success',
        ping_mode: 'protocol',
        protocols: ['graphql-ws'],
        headers: { 'User-Agent': 'wsmon' },
        ip_version: 'ipv6',
      });
      expect(parsed(config)).toEqual({ ...config, assertions: [] });
    });

    it('does not share default objects between results', () => {
      const first = parsed(probeConfig());
      first.headers['X-Mutated'] = '1';
      first.protocols.push('mutated');
      first.assertions.push({ type: 'close_code', operator: 'is', target: 1000 });
      expect(parsed(probeConfig())).toEqual({ url: WSS_URL, ...DEFAULTS });
    });

    it('does not modify its input', () => {
      const input = probeConfig({ protocols: 'a, b' });
      const copy = structuredClone(input);
      parsed(input);
      expect(input).toEqual(copy);
    });
  });

  describe('the input itself', () => {
    it.each([['a string'], [42], [[]]])('rejects %j at the root with rule type', (input) => {
      const error = expectError(input, '(root)', 'type');
      expect(error.message).toBe('(root): must be an object');
    });

    it('rejects null at the root without echoing it', () => {
      expect(expectError(null, '(root)', 'type')).not.toHaveProperty('value');
    });

    it('rejects an unknown top-level field with unknown_field and does not echo it', () => {
      const error = expectError(probeConfig({ interval_s: 60 }), 'interval_s', 'unknown_field');
      expect(error.message).toBe('interval_s: is not a known field');
      expect(error).not.toHaveProperty('value');
    });

    it('reports each unknown field, quoting odd names', () => {
      expectErrors(
        probeConfig({ Url: WSS_URL, 'send-message': 'x' }),
        { path: 'Url', rule: 'unknown_field' },
        { path: '["send-message"]', rule: 'unknown_field' },
      );
    });
  });

  describe('url', () => {
    it('is required', () => {
      const error = expectError({}, 'url', 'required');
      expect(error.message).toBe('url: is required');
      expect(error).not.toHaveProperty('value');
    });

    it('must be a string', () => {
      expect(expectError(probeConfig({ url: 42 }), 'url', 'type')).toMatchObject({
        message: 'url: must be a string',
        value: 42,
      });
    });

    it.each(['', 'stream.example.com/socket', 'wss://', 'not a url'])('rejects %j with rule url', (url) => {
      expect(expectError(probeConfig({ url }), 'url', 'url')).toMatchObject({ value: url });
    });

    it.each([
      ['http://stream.example.com/socket', 'http://'],
      ['https://stream.example.com/socket', 'https://'],
      ['ftp://stream.example.com/', 'ftp://'],
    ])('rejects %s with rule ws_scheme, naming the scheme', (url, scheme) => {
      const error = expectError(probeConfig({ url }), 'url', 'ws_scheme');
      expect(error.message).toBe(`url: must start with ws:// or wss:// (got ${scheme})`);
      expect(error.value).toBe(url);
    });

    it('rejects a #fragment with rule no_fragment', () => {
      const url = 'wss://stream.example.com/socket#main';
      expect(expectError(probeConfig({ url }), 'url', 'no_fragment')).toMatchObject({
        message: 'url: must not contain a #fragment',
        value: url,
      });
    });

    it('accepts 2048 characters and rejects 2049 with max_length, echoing a truncated value', () => {
      const at = (length: number) => `wss://stream.example.com/${'a'.repeat(length - 25)}`;
      expect(at(2048)).toHaveLength(2048);
      expect(parsed(probeConfig({ url: at(2048) })).url).toBe(at(2048));

      const error = expectError(probeConfig({ url: at(2049) }), 'url', 'max_length');
      expect(error.message).toBe('url: must be at most 2048 characters long');
      expect(error.value).toBe(`${at(2049).slice(0, 200)}…`);
    });

    it.each([
      'ws://stream.example.com/socket',
      'wss://stream.example.com:8443/socket?token=abc&v=2',
      'ws://127.0.0.1:8080',
      'ws://[::1]:8080/',
      'WSS://Stream.Example.com/socket',
    ])('accepts %s unchanged', (url) => {
      expect(parsed(probeConfig({ url })).url).toBe(url);
    });

    it('never echoes URL credentials in an error', () => {
      const error = expectError(
        probeConfig({ url: 'https://admin:hunter2@example.com/' }),
        'url',
        'ws_scheme',
      );
      expect(error.value).toBe('https://***@example.com/');
      expect(JSON.stringify(error)).not.toContain('hunter2');
    });
  });

  describe('timeout_ms', () => {
    it.each([TIMEOUT_MS.min, 5000, TIMEOUT_MS.max])('accepts %i', (timeout_ms) => {
      expect(parsed(probeConfig({ timeout_ms })).timeout_ms).toBe(timeout_ms);
    });

    it.each([
      { timeout_ms: 99, rule: 'min', message: 'timeout_ms: must be at least 100' },
      { timeout_ms: 0, rule: 'min', message: 'timeout_ms: must be at least 100' },
      { timeout_ms: 30_001, rule: 'max', message: 'timeout_ms: must be at most 30000' },
      { timeout_ms: 100.5, rule: 'integer', message: 'timeout_ms: must be an integer' },
      { timeout_ms: '10000', rule: 'type', message: 'timeout_ms: must be a number' },
      { timeout_ms: true, rule: 'type', message: 'timeout_ms: must be a number' },
    ])('rejects $timeout_ms with rule $rule', ({ timeout_ms, rule, message }) => {
      const error = expectError(probeConfig({ timeout_ms }), 'timeout_ms', rule);
      expect(error.message).toBe(message);
      expect(error.value).toBe(timeout_ms);
    });

    it('rejects null as a number, not as missing', () => {
      expectError(probeConfig({ timeout_ms: null }), 'timeout_ms', 'type');
    });
  });

  describe('enums', () => {
    /** Each value alone, with what the cross-field rules need for it. */
    const needs: Record<string, Input> = {
      round_trip_latency: { ping_mode: 'protocol' },
    };
    const pingModeNeeds: Record<string, Input> = { message: { send_message: 'ping' } };

    it.each(INTERPRETATIONS)('interpretation accepts %s', (interpretation) => {
      expect(parsed(probeConfig({ interpretation, ...needs[interpretation] })).interpretation).toBe(
        interpretation,
      );
    });

    it.each(PING_MODES)('ping_mode accepts %s', (ping_mode) => {
      expect(parsed(probeConfig({ ping_mode, ...pingModeNeeds[ping_mode] })).ping_mode).toBe(ping_mode);
    });

    it.each(IP_VERSIONS)('ip_version accepts %s', (ip_version) => {
      expect(parsed(probeConfig({ ip_version })).ip_version).toBe(ip_version);
    });

    it.each([
      { field: 'interpretation', bad: 'latency', allowed: INTERPRETATIONS },
      { field: 'interpretation', bad: 'Handshake_Latency', allowed: INTERPRETATIONS },
      { field: 'ping_mode', bad: 'ping', allowed: PING_MODES },
      { field: 'ip_version', bad: 'v4', allowed: IP_VERSIONS },
      { field: 'ip_version', bad: 4, allowed: IP_VERSIONS },
    ])('$field rejects $bad with rule enum, listing the allowed values', ({ field, bad, allowed }) => {
      const error = expectError(probeConfig({ [field]: bad }), field, 'enum');
      expect(error.message).toBe(`${field}: must be one of ${allowed.map((v) => `"${v}"`).join(', ')}`);
      expect(error.value).toBe(bad);
    });
  });

  describe('send_message and expect_message', () => {
    it.each(['send_message', 'expect_message'])('%s accepts the maximum length', (field) => {
      const config = roundTripConfig({ [field]: 'x'.repeat(MAX_MESSAGE_CHARS) });
      expect(parsed(config)[field as keyof ProbeConfig]).toHaveLength(MAX_MESSAGE_CHARS);
    });

    it.each(['send_message', 'expect_message'])('%s rejects one character more with max_length', (field) => {
      const error = expectError(
        roundTripConfig({ [field]: 'x'.repeat(MAX_MESSAGE_CHARS + 1) }),
        field,
        'max_length',
      );
      expect(error.message).toBe(`${field}: must be at most ${MAX_MESSAGE_CHARS} characters long`);
      expect(error.value).toBe(`${'x'.repeat(200)}…`);
    });

    it.each(['send_message', 'expect_message'])('%s must be a string', (field) => {
      expectError(roundTripConfig({ [field]: { op: 'ping' } }), field, 'type');
    });

    it('accepts a blank expect_message (any reply matches)', () => {
      expect(parsed(roundTripConfig({ expect_message: '' })).expect_message).toBe('');
    });
  });

  describe('protocols', () => {
    it('normalises the string form "a, b" to an array', () => {
      expect(parsed(probeConfig({ protocols: 'graphql-ws, graphql-transport-ws' })).protocols).toEqual([
        'graphql-ws',
        'graphql-transport-ws',
      ]);
    });

    it('normalises a single name and names without spaces', () => {
      expect(parsed(probeConfig({ protocols: 'mqtt' })).protocols).toEqual(['mqtt']);
      expect(parsed(probeConfig({ protocols: 'v1.chat,v2.chat' })).protocols).toEqual(['v1.chat', 'v2.chat']);
    });

    it('keeps the array form', () => {
      expect(parsed(probeConfig({ protocols: ['v2.chat', 'v1.chat'] })).protocols).toEqual([
        'v2.chat',
        'v1.chat',
      ]);
    });

    it.each([
      { protocols: 'chat v2', path: 'protocols[0]', value: 'chat v2' },
      { protocols: 'chat, ', path: 'protocols[1]', value: '' },
      { protocols: ['chat', 'chät'], path: 'protocols[1]', value: 'chät' },
      { protocols: ['chat', 'a/b'], path: 'protocols[1]', value: 'a/b' },
    ])('rejects an invalid token in $protocols with rule token', ({ protocols, path, value }) => {
      const error = expectError(probeConfig({ protocols }), path, 'token');
      expect(error.message).toBe(`${path}: subprotocol ${JSON.stringify(value)} is not a valid token`);
      expect(error.value).toBe(value);
    });

    it('rejects an empty string as one empty token (debatable: it does not mean "none")', () => {
      expectError(probeConfig({ protocols: '' }), 'protocols[0]', 'token');
    });

    it.each([[['chat', 'chat']], ['chat, chat']])(
      'rejects the duplicate in %j with rule unique',
      (protocols) => {
        const error = expectError(probeConfig({ protocols }), 'protocols[1]', 'unique');
        expect(error.message).toBe('protocols[1]: subprotocol "chat" is offered twice');
        expect(error.value).toBe('chat');
      },
    );

    it('treats names differing in case as different (subprotocols are case-sensitive)', () => {
      expect(parsed(probeConfig({ protocols: ['chat', 'Chat'] })).protocols).toEqual(['chat', 'Chat']);
    });

    const names = (n: number) => Array.from({ length: n }, (_, i) => `p${i}`);

    it.each([[names(MAX_PROTOCOLS)], [names(MAX_PROTOCOLS).join(', ')]])('accepts 16 names', (protocols) => {
      expect(parsed(probeConfig({ protocols })).protocols).toHaveLength(MAX_PROTOCOLS);
    });

    it.each([
      ['array', names(MAX_PROTOCOLS + 1)],
      ['string', names(MAX_PROTOCOLS + 1).join(', ')],
    ])('rejects 17 names in the %s form with max_items', (_form, protocols) => {
      const error = expectError(probeConfig({ protocols }), 'protocols', 'max_items');
      expect(error.message).toBe('protocols: must have at most 16 items');
    });

    it('rejects a value that is neither a string nor an array', () => {
      const error = expectError(probeConfig({ protocols: 42 }), 'protocols', 'type');
      expect(error.message).toBe('protocols: must be a string or an array');
      expect(error.value).toBe(42);
    });

    it('names the element that is not a string', () => {
      expect(expectError(probeConfig({ protocols: ['chat', 2] }), 'protocols[1]', 'type').message).toBe(
        'protocols[1]: must be a string',
      );
    });
  });

  describe('headers', () => {
    it('accepts ordinary headers, including overriding User-Agent', () => {
      const headers = {
        Authorization: 'Bearer abc',
        'User-Agent': 'wsmon/1.0',
        'X-Api-Key': 'k',
        Host: 'a.b',
      };
      expect(parsed(probeConfig({ headers })).headers).toEqual(headers);
    });

    it.each(['Bad Header', 'X-Ä', 'a:b', ''])('rejects the name %j with rule header_name', (name) => {
      const path = `headers[${JSON.stringify(name)}]`;
      const error = expectError(probeConfig({ headers: { [name]: 'v' } }), path, 'header_name');
      expect(error.message).toBe(`${path}: is not a valid HTTP header name`);
    });

    it.each([
      'Connection',
      'upgrade',
      'Sec-WebSocket-Key',
      'SEC-WEBSOCKET-VERSION',
      'sec-websocket-extensions',
      'Sec-WebSocket-Protocol',
    ])('rejects the handshake header %s with rule reserved_header', (name) => {
      const path = `headers[${JSON.stringify(name)}]`;
      const pathOf = /^[A-Za-z_]\w*$/.test(name) ? `headers.${name}` : path;
      expectError(probeConfig({ headers: { [name]: 'x' } }), pathOf, 'reserved_header');
    });

    it('points Sec-WebSocket-Protocol to the protocols field', () => {
      const error = expectError(
        probeConfig({ headers: { 'sec-websocket-protocol': 'chat' } }),
        'headers["sec-websocket-protocol"]',
        'reserved_header',
      );
      expect(error.message).toBe(
        'headers["sec-websocket-protocol"]: is set by the WebSocket handshake itself; use protocols',
      );
    });

    it('rejects names that differ only in case with rule duplicate_header', () => {
      const error = expectError(
        probeConfig({ headers: { 'X-Trace': 'a', 'x-trace': 'b' } }),
        'headers["x-trace"]',
        'duplicate_header',
      );
      expect(error.message).toBe('headers["x-trace"]: is given twice (header names ignore case)');
    });

    it.each([
      ['a carriage return', 'a\rb'],
      ['a line feed', 'a\nSet-Cookie: x=1'],
      ['CRLF', 'a\r\nb'],
      ['NUL', 'a\u0000b'],
      ['DEL', 'a\u007fb'],
      ['a character beyond Latin-1', 'price €5'],
    ])('rejects %s in a value with rule header_value', (_what, value) => {
      expectError(probeConfig({ headers: { 'X-Note': value } }), 'headers["X-Note"]', 'header_value');
    });

    it('accepts tabs and Latin-1 in a value', () => {
      expect(parsed(probeConfig({ headers: { 'X-Note': 'a\tcafé' } })).headers).toEqual({
        'X-Note': 'a\tcafé',
      });
    });

    it('rejects a non-string value', () => {
      expectError(probeConfig({ headers: { 'X-Retry': 3 } }), 'headers["X-Retry"]', 'type');
    });

    it('rejects headers that are not an object', () => {
      const error = expectError(probeConfig({ headers: 'Authorization: Bearer abc' }), 'headers', 'type');
      expect(error.message).toBe('headers: must be an object');
    });

    it('accepts a value of 8192 characters and rejects 8193', () => {
      parsed(probeConfig({ headers: { 'X-Big': 'x'.repeat(8192) } }));
      expectError(probeConfig({ headers: { 'X-Big': 'x'.repeat(8193) } }), 'headers["X-Big"]', 'max_length');
    });

    it('accepts 100 headers and rejects 101 with max_items', () => {
      const headers = (n: number) =>
        Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v']));
      parsed(probeConfig({ headers: headers(100) }));
      expect(expectError(probeConfig({ headers: headers(101) }), 'headers', 'max_items').message).toBe(
        'headers: must have at most 100 headers',
      );
    });
  });

  describe('cookies', () => {
    it.each(['A=1; B=2', 'session=abc', 'A=1;B=2', 'A=', 'token="quoted-value"', '  A=1 ;  B=2  '])(
      'accepts %j',
      (cookies) => {
        expect(parsed(probeConfig({ cookies })).cookies).toBe(cookies);
      },
    );

    it.each([
      ['A', 1],
      ['=1', 1],
      ['A=1 2', 1],
      ['A=1, B=2', 1],
      ['A=1; B', 2],
      ['A=1; B=2;', 3],
      ['A=1;;B=2', 2],
      ['A="1', 1],
      ['', 1],
    ])('rejects %j with rule cookie_format, naming cookie %i', (cookies, index) => {
      const error = expectError(probeConfig({ cookies }), 'cookies', 'cookie_format');
      expect(error.message).toBe(
        `cookies: cookie ${index} must look like NAME=VALUE (form NAME1=VALUE1; NAME2=VALUE2)`,
      );
    });

    it('reports each bad cookie', () => {
      const errors = errorsOf(probeConfig({ cookies: 'A; B=1; C' }));
      expect(errors.map((e) => e.message)).toEqual([
        'cookies: cookie 1 must look like NAME=VALUE (form NAME1=VALUE1; NAME2=VALUE2)',
        'cookies: cookie 3 must look like NAME=VALUE (form NAME1=VALUE1; NAME2=VALUE2)',
      ]);
    });

    it('must be a string', () => {
      expectError(probeConfig({ cookies: { A: '1' } }), 'cookies', 'type');
    });
  });

  describe('basic_auth', () => {
    it('accepts a username and password, including an empty password', () => {
      expect(
        parsed(probeConfig({ basic_auth: { username: 'probe', password: 's3cret' } })).basic_auth,
      ).toEqual({ username: 'probe', password: 's3cret' });
      parsed(probeConfig({ basic_auth: { username: 'probe', password: '' } }));
    });

    it.each([
      { basic_auth: { password: 'p' }, path: 'basic_auth.username', rule: 'required' },
      { basic_auth: { username: '', password: 'p' }, path: 'basic_auth.username', rule: 'min_length' },
      { basic_auth: { username: 'a:b', password: 'p' }, path: 'basic_auth.username', rule: 'no_colon' },
      { basic_auth: { username: 'u' }, path: 'basic_auth.password', rule: 'required' },
      { basic_auth: { username: 'u', password: 1234 }, path: 'basic_auth.password', rule: 'type' },
      {
        basic_auth: { username: 'u', password: 'p', realm: 'x' },
        path: 'basic_auth.realm',
        rule: 'unknown_field',
      },
      { basic_auth: 'u:p', path: 'basic_auth', rule: 'type' },
    ])('reports $path with rule $rule', ({ basic_auth, path, rule }) => {
      expectError(probeConfig({ basic_auth }), path, rule);
    });

    it('explains the colon rule', () => {
      const config = probeConfig({ basic_auth: { username: 'a:b', password: 'p' } });
      expect(expectError(config, 'basic_auth.username', 'no_colon').message).toBe(
        'basic_auth.username: must not contain ":" (RFC 7617)',
      );
    });
  });

  describe('origin', () => {
    it.each(['https://app.example.com', 'http://localhost:3000', 'https://app.example.com:8443', 'null'])(
      'accepts %s',
      (origin) => {
        expect(parsed(probeConfig({ origin })).origin).toBe(origin);
      },
    );

    it.each([
      'app.example.com',
      'wss://app.example.com',
      'ftp://app.example.com',
      'https://app.example.com/',
      'https://app.example.com/path',
      'https://app.example.com?x=1',
      'https://app.example.com#x',
      'https://',
      'null ',
      '',
    ])('rejects %j with rule origin_format', (origin) => {
      const error = expectError(probeConfig({ origin }), 'origin', 'origin_format');
      expect(error.message).toBe(
        'origin: must be an origin such as https://app.example.com (no path), or null',
      );
      expect(error.value).toBe(origin);
    });

    it('rejects credentials in an origin without echoing them', () => {
      const error = expectError(
        probeConfig({ origin: 'https://u:pw@app.example.com' }),
        'origin',
        'origin_format',
      );
      expect(error.value).toBe('https://***@app.example.com');
    });
  });

  describe('tls', () => {
    it('applies skip_verify false to an empty tls on wss://', () => {
      expect(parsed(probeConfig({ tls: {} })).tls).toEqual({ skip_verify: false });
    });

    it('accepts every tls field', () => {
      const tls = { skip_verify: true, ca_pem: PEM, server_name: 'internal.example.com' };
      expect(parsed(probeConfig({ tls })).tls).toEqual(tls);
    });

    it.each(['internal.example.com', 'localhost', 'example.com.', '_srv.example.com', '10.0.0.1'])(
      'accepts the server_name %s',
      (server_name) => {
        parsed(probeConfig({ tls: { server_name } }));
      },
    );

    it.each([
      'bad name',
      'a..b',
      '-a.example.com',
      'a-.example.com',
      'https://a.example.com',
      `${'a'.repeat(64)}.com`,
    ])('rejects the server_name %j with rule hostname', (server_name) => {
      const error = expectError(probeConfig({ tls: { server_name } }), 'tls.server_name', 'hostname');
      expect(error.message).toBe('tls.server_name: must be a DNS host name such as api.example.com');
      expect(error.value).toBe(server_name);
    });

    it.each([WS_URL, 'ws://STREAM.example.com'])('rejects tls on %s with rule requires_wss', (url) => {
      const error = expectError(probeConfig({ url, tls: {} }), 'tls', 'requires_wss');
      expect(error.message).toBe('tls: only applies to wss:// URLs');
    });

    it('accepts tls when the scheme is written in capitals (WSS://)', () => {
      parsed(probeConfig({ url: 'WSS://stream.example.com/', tls: { skip_verify: true } }));
    });

    it('reports only the scheme, not tls, for an http:// URL', () => {
      expectError(probeConfig({ url: 'https://x.example.com', tls: {} }), 'url', 'ws_scheme');
    });

    it.each([
      'not a certificate',
      '-----BEGIN CERTIFICATE----------END CERTIFICATE-----',
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----',
    ])('rejects the ca_pem %j with rule pem, without echoing it', (ca_pem) => {
      const error = expectError(probeConfig({ tls: { ca_pem } }), 'tls.ca_pem', 'pem');
      expect(error.message).toBe(
        'tls.ca_pem: must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)',
      );
      expect(error).not.toHaveProperty('value');
    });

    it('rejects an unknown tls key with unknown_field', () => {
      expectError(probeConfig({ tls: { verify: false } }), 'tls.verify', 'unknown_field');
    });

    it('rejects a non-boolean skip_verify', () => {
      expectError(probeConfig({ tls: { skip_verify: 'yes' } }), 'tls.skip_verify', 'type');
    });
  });

  describe('cross-field rules', () => {
    it('requires send_message when ping_mode is message', () => {
      const error = expectError(
        probeConfig({ ping_mode: 'message' }),
        'send_message',
        'required_for_ping_mode',
      );
      expect(error.message).toBe('send_message: is required when ping_mode is message');
      expect(error).not.toHaveProperty('value');
    });

    it.each(['none', 'protocol'])(
      'requires ping_mode message for send_message (ping_mode %s)',
      (ping_mode) => {
        const config = probeConfig({ ping_mode, send_message: 'ping' });
        const error = expectError(config, 'ping_mode', 'required_for_send_message');
        expect(error.message).toBe('ping_mode: must be message when send_message is set');
        expect(error.value).toBe(ping_mode);
      },
    );

    it('requires ping_mode message for send_message when ping_mode is left to its default', () => {
      expectError(probeConfig({ send_message: 'ping' }), 'ping_mode', 'required_for_send_message');
    });

    it.each(['none', 'protocol'])('rejects expect_message without ping_mode message (%s)', (ping_mode) => {
      const error = expectError(
        probeConfig({ ping_mode, expect_message: 'pong' }),
        'expect_message',
        'requires_ping_mode_message',
      );
      expect(error.message).toBe('expect_message: only applies when ping_mode is message');
      expect(error.value).toBe('pong');
    });

    it('reports both rules when send_message and expect_message come without ping_mode', () => {
      expectErrors(
        probeConfig({ send_message: 'ping', expect_message: 'pong' }),
        { path: 'ping_mode', rule: 'required_for_send_message' },
        { path: 'expect_message', rule: 'requires_ping_mode_message' },
      );
    });

    describe('round_trip_latency', () => {
      it('needs a round trip in the default form', () => {
        const error = expectError(
          probeConfig({ interpretation: 'round_trip_latency' }),
          'ping_mode',
          'required_for_round_trip',
        );
        expect(error.message).toBe('ping_mode: must be message or protocol for round_trip_latency');
        expect(error.value).toBe('none');
      });

      it('accepts ping_mode message or protocol', () => {
        parsed(roundTripConfig());
        parsed(probeConfig({ interpretation: 'round_trip_latency', ping_mode: 'protocol' }));
      });

      it.each([
        ['no message at all', [step.hold()]],
        ['a receive before the send', [step.receive(), step.send()]],
        ['a send without a receive', [step.send()]],
      ])('needs a round trip in the steps form (%s)', (_what, middle) => {
        const error = expectError(
          stepsConfig(middle, { interpretation: 'round_trip_latency' }),
          'steps',
          'required_for_round_trip',
        );
        expect(error.message).toBe(
          'steps: must contain a ping step or a send step followed by a receive step for round_trip_latency',
        );
      });

      it.each([
        ['a ping step', [step.ping()]],
        ['a send then a receive', [step.send(), step.receive()]],
        ['a send, a hold, then a receive', [step.send(), step.hold(), step.receive()]],
      ])('accepts steps with %s', (_what, middle) => {
        parsed(stepsConfig(middle, { interpretation: 'round_trip_latency' }));
      });
    });

    it.each([
      { field: { origin: 'https://app.example.com' }, header: 'Origin', path: 'headers.Origin' },
      { field: { origin: 'null' }, header: 'origin', path: 'headers.origin' },
      { field: { cookies: 'A=1' }, header: 'Cookie', path: 'headers.Cookie' },
      { field: { cookies: 'A=1' }, header: 'COOKIE', path: 'headers.COOKIE' },
      {
        field: { basic_auth: { username: 'u', password: 'p' } },
        header: 'authorization',
        path: 'headers.authorization',
      },
    ])(
      'rejects $header next to $field with rule conflict, at the header as written',
      ({ field, header, path }) => {
        const config = probeConfig({ ...field, headers: { [header]: 'secret-value' } });
        const error = expectError(config, path, 'conflict');
        expect(error.message).toBe(`${path}: is also set by ${Object.keys(field)[0]}; keep one`);
      },
    );

    it.each([
      {
        field: 'send_message',
        value: 'ping',
        message: 'cannot be combined with steps; use send and receive steps',
      },
      {
        field: 'expect_message',
        value: 'pong',
        message: 'cannot be combined with steps; use send and receive steps',
      },
      {
        field: 'ping_mode',
        value: 'message',
        message: 'cannot be combined with steps; use send and receive steps',
      },
      { field: 'ping_mode', value: 'protocol', message: 'cannot be combined with steps; use a ping step' },
    ])('rejects $field $value next to steps with conflicts_with_steps', ({ field, value, message }) => {
      const error = expectError(stepsConfig([], { [field]: value }), field, 'conflicts_with_steps');
      expect(error.message).toBe(`${field}: ${message}`);
      expect(error.value).toBe(value);
    });

    it('accepts ping_mode none (the default) spelled out next to steps', () => {
      parsed(stepsConfig([], { ping_mode: 'none' }));
    });

    it('requires steps to start with connect', () => {
      const config = probeConfig({ steps: [step.send(), step.disconnect()] });
      const error = expectError(config, 'steps[0].type', 'connect_first');
      expect(error.message).toBe('steps[0].type: the first step must be connect');
      expect(error.value).toBe('send');
    });

    it('rejects a second connect', () => {
      const config = probeConfig({ steps: [step.connect(), step.send(), step.connect()] });
      const error = expectError(config, 'steps[2].type', 'connect_first');
      expect(error.message).toBe('steps[2].type: connect may only be the first step');
    });

    it('rejects a disconnect that is not last', () => {
      const config = probeConfig({ steps: [step.connect(), step.disconnect(), step.send()] });
      const error = expectError(config, 'steps[1].type', 'disconnect_last');
      expect(error.message).toBe('steps[1].type: disconnect must be the last step');
      expect(error.value).toBe('disconnect');
    });

    it('accepts steps without a disconnect', () => {
      parsed(probeConfig({ steps: [step.connect(), step.send()] }));
    });

    it.each([
      { timeout_ms: undefined, duration_ms: 10_000, limit: 10_000 },
      { timeout_ms: 5000, duration_ms: 5000, limit: 5000 },
      { timeout_ms: 5000, duration_ms: 20_000, limit: 5000 },
    ])(
      'rejects a hold of $duration_ms ms within timeout_ms $timeout_ms with within_timeout',
      ({ timeout_ms, duration_ms, limit }) => {
        const config = stepsConfig([step.hold({ duration_ms })], timeout_ms ? { timeout_ms } : {});
        const error = expectError(config, 'steps[1].duration_ms', 'within_timeout');
        expect(error.message).toBe(`steps[1].duration_ms: must be less than timeout_ms (${limit})`);
        expect(error.value).toBe(duration_ms);
      },
    );

    it('accepts a hold shorter than timeout_ms', () => {
      parsed(stepsConfig([step.hold({ duration_ms: 9999 })]));
    });

    it('rejects a round_trip response_time assertion without a round trip', () => {
      const config = probeConfig({ assertions: [assertion('response_time', { property: 'round_trip' })] });
      const error = expectError(config, 'assertions[0].property', 'requires_round_trip');
      expect(error.message).toBe('assertions[0].property: round_trip needs a probe that makes a round trip');
      expect(error.value).toBe('round_trip');
    });

    it('accepts a round_trip response_time assertion with a round trip, in either form', () => {
      const assertions = [assertion('response_time', { property: 'round_trip' })];
      parsed(roundTripConfig({ assertions }));
      parsed(probeConfig({ ping_mode: 'protocol', assertions }));
      parsed(stepsConfig([step.ping()], { assertions }));
    });

    it('rejects a round_trip response_time assertion in steps without a round trip', () => {
      const config = stepsConfig([step.send()], {
        assertions: [assertion(), assertion('response_time', { property: 'round_trip' })],
      });
      expectError(config, 'assertions[1].property', 'requires_round_trip');
    });

    it('rejects a certificate_days_remaining assertion on ws://', () => {
      const config = probeConfig({ url: WS_URL, assertions: [assertion('certificate_days_remaining')] });
      const error = expectError(config, 'assertions[0].type', 'requires_wss');
      expect(error.message).toBe('assertions[0].type: certificate assertions need a wss:// URL');
      expect(error.value).toBe('certificate_days_remaining');
    });

    it.each([WSS_URL, 'WSS://stream.example.com'])('accepts a certificate assertion on %s', (url) => {
      parsed(probeConfig({ url, assertions: [assertion('certificate_days_remaining')] }));
    });

    it('reports field errors and cross-field errors together', () => {
      expectErrors(
        probeConfig({ url: WS_URL, timeout_ms: 50, ping_mode: 'message', tls: {} }),
        { path: 'timeout_ms', rule: 'min' },
        { path: 'send_message', rule: 'required_for_ping_mode' },
        { path: 'tls', rule: 'requires_wss' },
      );
    });
  });

  describe('assertions', () => {
    const ALLOWED_OPERATORS: Record<AssertionType, readonly string[]> = {
      response_time: ['less_than'],
      received_message: STRING_OPERATORS,
      header: STRING_OPERATORS,
      close_code: ['is', 'is_not'],
      subprotocol: ['is', 'is_not'],
      certificate_days_remaining: ['greater_than'],
      // exists, less_than and greater_than take other targets: see the JSON path assertions below.
      json_path: ['equals', 'matches'],
    };
    const DISALLOWED_OPERATORS: Record<AssertionType, readonly string[]> = {
      response_time: ['greater_than', 'is', 'less_than_or_equal'],
      received_message: ['less_than', 'equals'],
      header: ['greater_than', 'exists'],
      close_code: ['contains', 'less_than'],
      subprotocol: ['matches', 'contains'],
      certificate_days_remaining: ['less_than', 'is'],
      json_path: ['contains', 'is'],
    };

    /** Every operator of each type, as the enum error lists them. */
    const ENUM_OPERATORS: Record<AssertionType, readonly string[]> = {
      ...ALLOWED_OPERATORS,
      json_path: JSON_PATH_OPERATORS,
    };

    it('covers every assertion type', () => {
      expect(Object.keys(ALLOWED_OPERATORS).sort()).toEqual([...ASSERTION_TYPES].sort());
    });

    const allowed = ASSERTION_TYPES.flatMap((type) =>
      ALLOWED_OPERATORS[type].map((operator) => ({ type, operator })),
    );
    it.each(allowed)('accepts $type with operator $operator', ({ type, operator }) => {
      const config = probeConfig({ assertions: [assertion(type, { operator })] });
      expect(parsed(config).assertions).toEqual([{ ...VALID_ASSERTION[type], operator }]);
    });

    const disallowed = ASSERTION_TYPES.flatMap((type) =>
      DISALLOWED_OPERATORS[type].map((operator) => ({ type, operator })),
    );
    it.each(disallowed)('rejects $type with operator $operator with rule enum', ({ type, operator }) => {
      const config = probeConfig({ assertions: [assertion(), assertion(type, { operator })] });
      const error = expectError(config, 'assertions[1].operator', 'enum');
      expect(error.message).toBe(
        `assertions[1].operator: must be one of ${ENUM_OPERATORS[type].map((o) => `"${o}"`).join(', ')}`,
      );
      expect(error.value).toBe(operator);
    });

    it.each(RESPONSE_TIME_PROPERTIES.filter((p) => p !== 'round_trip'))(
      'accepts the response_time property %s',
      (property) => {
        parsed(probeConfig({ assertions: [assertion('response_time', { property })] }));
      },
    );

    it('rejects an unknown response_time property with enum', () => {
      const config = probeConfig({ assertions: [assertion('response_time', { property: 'dns' })] });
      expectError(config, 'assertions[0].property', 'enum');
    });

    it.each([
      { type: 'received_message', operator: 'matches' },
      { type: 'received_message', operator: 'does_not_match' },
      { type: 'header', operator: 'matches' },
      { type: 'header', operator: 'does_not_match' },
    ] as const)(
      'rejects an invalid regex for $type $operator with rule regex at .target',
      ({ type, operator }) => {
        const config = probeConfig({ assertions: [assertion(type, { operator, target: '"op":("pong"' })] });
        const error = expectError(config, 'assertions[0].target', 'regex');
        expect(error.message).toMatch(/^assertions\[0\]\.target: is not a valid regular expression \(.+\)$/);
        expect(error.value).toBe('"op":("pong"');
      },
    );

    it('accepts a valid regex for matches', () => {
      parsed(
        probeConfig({
          assertions: [assertion('received_message', { operator: 'matches', target: '^\\{.*"op":"pong"' })],
        }),
      );
    });

    it.each(['contains', 'is'])('does not treat the target of %s as a regex', (operator) => {
      parsed(probeConfig({ assertions: [assertion('received_message', { operator, target: '(' })] }));
    });

    it(`accepts ${MAX_ASSERTIONS} assertions and rejects ${MAX_ASSERTIONS + 1} with max_items`, () => {
      const assertions = (n: number) => Array.from({ length: n }, () => assertion());
      expect(parsed(probeConfig({ assertions: assertions(MAX_ASSERTIONS) })).assertions).toHaveLength(20);
      const error = expectError(
        probeConfig({ assertions: assertions(MAX_ASSERTIONS + 1) }),
        'assertions',
        'max_items',
      );
      expect(error.message).toBe('assertions: must have at most 20 items');
    });

    it('rejects an unknown type with enum at .type, listing the allowed types', () => {
      const config = probeConfig({
        assertions: [assertion(), { type: 'status_code', operator: 'is', target: 101 }],
      });
      const error = expectError(config, 'assertions[1].type', 'enum');
      expect(error.message).toBe(
        `assertions[1].type: must be one of ${ASSERTION_TYPES.map((t) => `"${t}"`).join(', ')}`,
      );
      expect(error.value).toBe('status_code');
    });

    it('rejects a missing type with required, listing the allowed types', () => {
      const config = probeConfig({ assertions: [{ operator: 'is', target: 'x' }] });
      const error = expectError(config, 'assertions[0].type', 'required');
      expect(error.message).toBe(
        `assertions[0].type: is required (one of ${ASSERTION_TYPES.map((t) => `"${t}"`).join(', ')})`,
      );
    });

    it('rejects an assertion that is not an object', () => {
      expectError(probeConfig({ assertions: ['response_time < 500'] }), 'assertions[0]', 'type');
    });

    it('requires the header name of a header assertion', () => {
      const { property: _omitted, ...withoutProperty } = VALID_ASSERTION.header;
      expectError(probeConfig({ assertions: [withoutProperty] }), 'assertions[0].property', 'required');
    });

    it('rejects a header assertion on an invalid header name with header_name', () => {
      const config = probeConfig({ assertions: [assertion('header', { property: 'Content Type' })] });
      const error = expectError(config, 'assertions[0].property', 'header_name');
      expect(error.message).toBe('assertions[0].property: must be an HTTP header name');
      expect(error.value).toBe('Content Type');
    });

    it.each([
      { type: 'response_time', target: 0, path: 'target', rule: 'min' },
      { type: 'response_time', target: 300_001, path: 'target', rule: 'max' },
      { type: 'response_time', target: '500', path: 'target', rule: 'type' },
      { type: 'received_message', target: 'x'.repeat(4097), path: 'target', rule: 'max_length' },
      { type: 'close_code', target: 999, path: 'target', rule: 'min' },
      { type: 'close_code', target: 1000.5, path: 'target', rule: 'integer' },
      { type: 'subprotocol', target: 'x'.repeat(257), path: 'target', rule: 'max_length' },
      { type: 'certificate_days_remaining', target: -1, path: 'target', rule: 'min' },
    ] as const)('rejects a $type target of $target with $rule', ({ type, target, path, rule }) => {
      expectError(probeConfig({ assertions: [assertion(type, { target })] }), `assertions[0].${path}`, rule);
    });

    it('explains an exclusive bound', () => {
      const config = probeConfig({ assertions: [assertion('response_time', { target: 0 })] });
      expect(expectError(config, 'assertions[0].target', 'min').message).toBe(
        'assertions[0].target: must be more than 0',
      );
    });

    it('accepts an observed 1006 in a close_code assertion', () => {
      parsed(probeConfig({ assertions: [assertion('close_code', { operator: 'is_not', target: 1006 })] }));
    });

    it('rejects an unknown key in an assertion', () => {
      const config = probeConfig({ assertions: [assertion('close_code', { property: 'code' })] });
      expectError(config, 'assertions[0].property', 'unknown_field');
    });

    it('rejects a missing operator and target with required, listing the operators', () => {
      const errors = expectErrors(
        probeConfig({ assertions: [{ type: 'subprotocol' }] }),
        { path: 'assertions[0].operator', rule: 'required' },
        { path: 'assertions[0].target', rule: 'required' },
      );
      expect(errors.map((e) => e.message)).toEqual([
        'assertions[0].operator: is required (one of "is", "is_not")',
        'assertions[0].target: is required',
      ]);
    });
  });

  describe('steps', () => {
    it('accepts every step type and applies the step defaults', () => {
      const config = probeConfig({
        interpretation: 'round_trip_latency',
        steps: [
          step.connect({ within_ms: 2000 }),
          step.send({ message: '{"op":"subscribe"}' }),
          step.receive({ timeout_ms: 3000, expect_message: 'subscribed' }),
          step.ping({ payload: 'hb' }),
          step.hold({ duration_ms: 5000 }),
          step.disconnect(),
        ],
      });
      expect(parsed(config).steps).toEqual([
        { type: 'connect', within_ms: 2000 },
        { type: 'send', message: '{"op":"subscribe"}' },
        {
          type: 'receive',
          timeout_ms: 3000,
          expect_message: 'subscribed',
          skip_non_matching: false,
          assertions: [],
        },
        { type: 'ping', payload: 'hb' },
        { type: 'hold', duration_ms: 5000, min_messages: 0, min_pongs: 0 },
        { type: 'disconnect', initiator: 'client', code: 1000 },
      ]);
    });

    it('keeps explicit step values', () => {
      const steps = [
        { type: 'connect' },
        {
          type: 'receive',
          skip_non_matching: true,
          assertions: [{ type: 'received_message', operator: 'matches', target: '^ok$' }],
        },
        { type: 'hold', duration_ms: 3000, min_messages: 2, min_pongs: 1, ping_interval_ms: 500 },
        {
          type: 'disconnect',
          initiator: 'server',
          code: 4000,
          reason: 'done',
          expected_close_code: 1001,
          timeout_ms: 1000,
        },
      ];
      expect(parsed(probeConfig({ steps })).steps).toEqual(steps);
    });

    it('rejects an empty list with min_items', () => {
      expect(expectError(probeConfig({ steps: [] }), 'steps', 'min_items').message).toBe(
        'steps: must have at least 1 items',
      );
    });

    it(`accepts ${MAX_STEPS} steps and rejects ${MAX_STEPS + 1} with max_items`, () => {
      const steps = (n: number) => [step.connect(), ...Array.from({ length: n - 1 }, () => step.send())];
      parsed(probeConfig({ steps: steps(MAX_STEPS) }));
      expectError(probeConfig({ steps: steps(MAX_STEPS + 1) }), 'steps', 'max_items');
    });

    it('rejects an unknown step type with enum, listing the step types', () => {
      const error = expectError(stepsConfig([{ type: 'sleep', ms: 100 }]), 'steps[1].type', 'enum');
      expect(error.message).toBe(
        'steps[1].type: must be one of "connect", "send", "receive", "ping", "hold", "disconnect"',
      );
      expect(error.value).toBe('sleep');
    });

    it('rejects a step without a type with required', () => {
      expectError(stepsConfig([{ message: 'hello' }]), 'steps[1].type', 'required');
    });

    it('rejects an unknown key in a step', () => {
      expectError(stepsConfig([step.send({ payload: 'x' })]), 'steps[1].payload', 'unknown_field');
    });

    describe('connect', () => {
      it.each([
        { within_ms: 0, rule: 'min' },
        { within_ms: 30_001, rule: 'max' },
        { within_ms: 1.5, rule: 'integer' },
      ])('rejects within_ms $within_ms with $rule', ({ within_ms, rule }) => {
        const config = probeConfig({ steps: [step.connect({ within_ms })] });
        expectError(config, 'steps[0].within_ms', rule);
      });
    });

    describe('send', () => {
      it('requires a message', () => {
        expectError(stepsConfig([{ type: 'send' }]), 'steps[1].message', 'required');
      });

      it('accepts the maximum message length and rejects one more', () => {
        parsed(stepsConfig([step.send({ message: 'x'.repeat(MAX_MESSAGE_CHARS) })]));
        expectError(
          stepsConfig([step.send({ message: 'x'.repeat(MAX_MESSAGE_CHARS + 1) })]),
          'steps[1].message',
          'max_length',
        );
      });
    });

    describe('receive', () => {
      it.each([
        { field: 'timeout_ms', value: 0, rule: 'min' },
        { field: 'timeout_ms', value: 30_001, rule: 'max' },
        { field: 'expect_message', value: 'x'.repeat(MAX_MESSAGE_CHARS + 1), rule: 'max_length' },
        { field: 'skip_non_matching', value: 'yes', rule: 'type' },
      ])('rejects $field with $rule', ({ field, value, rule }) => {
        expectError(stepsConfig([step.receive({ [field]: value })]), `steps[1].${field}`, rule);
      });

      it.each(['matches', 'does_not_match'])('rejects an invalid regex in a %s assertion', (operator) => {
        const config = stepsConfig([
          step.receive({
            assertions: [assertion(), assertion('received_message', { operator, target: '[a-' })],
          }),
        ]);
        const error = expectError(config, 'steps[1].assertions[1].target', 'regex');
        expect(error.value).toBe('[a-');
      });

      it('accepts only assertions on the message: received_message and json_path', () => {
        const config = stepsConfig([step.receive({ assertions: [assertion('subprotocol')] })]);
        const error = expectError(config, 'steps[1].assertions[0].type', 'enum');
        expect(error.message).toBe(
          'steps[1].assertions[0].type: must be one of "received_message", "json_path"',
        );
        parsed(stepsConfig([step.receive({ assertions: [assertion('json_path')] })]));
      });

      it('accepts 20 assertions and rejects 21', () => {
        const assertions = (n: number) => Array.from({ length: n }, () => assertion());
        parsed(stepsConfig([step.receive({ assertions: assertions(MAX_ASSERTIONS) })]));
        expectError(
          stepsConfig([step.receive({ assertions: assertions(MAX_ASSERTIONS + 1) })]),
          'steps[1].assertions',
          'max_items',
        );
      });
    });

    describe('ping', () => {
      it('accepts a 125-byte payload, counting bytes not characters', () => {
        parsed(stepsConfig([step.ping({ payload: 'x'.repeat(MAX_PING_PAYLOAD_BYTES) })]));
        parsed(stepsConfig([step.ping({ payload: `${'é'.repeat(62)}x` })]));
      });

      it.each([
        ['126 ASCII characters', 'x'.repeat(126)],
        ['63 two-byte characters', 'é'.repeat(63)],
      ])('rejects %s with max_bytes', (_what, payload) => {
        const error = expectError(stepsConfig([step.ping({ payload })]), 'steps[1].payload', 'max_bytes');
        expect(error.message).toBe('steps[1].payload: must be at most 125 bytes (a control frame limit)');
        expect(error.value).toBe(payload);
      });

      it('rejects a timeout_ms above the maximum', () => {
        expectError(stepsConfig([step.ping({ timeout_ms: 30_001 })]), 'steps[1].timeout_ms', 'max');
      });
    });

    describe('hold', () => {
      it('reports a duration above the maximum also as exceeding timeout_ms', () => {
        expectErrors(
          stepsConfig([step.hold({ duration_ms: 30_001 })], { timeout_ms: TIMEOUT_MS.max }),
          { path: 'steps[1].duration_ms', rule: 'max' },
          { path: 'steps[1].duration_ms', rule: 'within_timeout' },
        );
      });

      it('requires duration_ms', () => {
        expectError(stepsConfig([{ type: 'hold' }]), 'steps[1].duration_ms', 'required');
      });

      it.each([
        { field: 'duration_ms', value: 0, rule: 'min' },
        { field: 'min_messages', value: -1, rule: 'min' },
        { field: 'min_messages', value: 1.5, rule: 'integer' },
        { field: 'min_pongs', value: 10_001, rule: 'max' },
        { field: 'ping_interval_ms', value: 9, rule: 'min' },
      ])('rejects $field $value with $rule', ({ field, value, rule }) => {
        expectError(stepsConfig([step.hold({ [field]: value })]), `steps[1].${field}`, rule);
      });
    });

    describe('disconnect', () => {
      it.each([1000, 3000, 4999])('accepts the close code %i', (code) => {
        parsed(probeConfig({ steps: [step.connect(), step.disconnect({ code })] }));
      });

      it.each([1001, 1011, 2999, 5000, 999])('rejects the close code %i with close_code', (code) => {
        const config = probeConfig({ steps: [step.connect(), step.disconnect({ code })] });
        const error = expectError(config, 'steps[1].code', 'close_code');
        expect(error.message).toBe(
          'steps[1].code: a client may close with 1000 or an application code from 3000 to 4999',
        );
        expect(error.value).toBe(code);
      });

      it('rejects a non-integer close code', () => {
        const config = probeConfig({ steps: [step.connect(), step.disconnect({ code: 1000.5 })] });
        expectError(config, 'steps[1].code', 'integer');
      });

      it('accepts a 123-byte reason and rejects 124 bytes with max_bytes', () => {
        const withReason = (reason: string) =>
          probeConfig({ steps: [step.connect(), step.disconnect({ reason })] });
        parsed(withReason('r'.repeat(MAX_CLOSE_REASON_BYTES)));
        const error = expectError(withReason(`${'r'.repeat(122)}é`), 'steps[1].reason', 'max_bytes');
        expect(error.message).toBe('steps[1].reason: must be at most 123 bytes');
      });

      it.each([1000, 1001, 1011, 1012, 1014, 3000, 4999])('accepts the expected close code %i', (code) => {
        parsed(probeConfig({ steps: [step.connect(), step.disconnect({ expected_close_code: code })] }));
      });

      it.each([1004, 1005, 1006, 1015, 1016, 2999])(
        'rejects the expected close code %i with close_code',
        (code) => {
          const config = probeConfig({
            steps: [step.connect(), step.disconnect({ expected_close_code: code })],
          });
          const error = expectError(config, 'steps[1].expected_close_code', 'close_code');
          expect(error.message).toBe(
            `steps[1].expected_close_code: ${code} is not a close code an endpoint can send`,
          );
          expect(error.value).toBe(code);
        },
      );

      it.each([
        { code: 999, rule: 'min' },
        { code: 5000, rule: 'max' },
      ])('rejects the expected close code $code with $rule', ({ code, rule }) => {
        const config = probeConfig({
          steps: [step.connect(), step.disconnect({ expected_close_code: code })],
        });
        expectError(config, 'steps[1].expected_close_code', rule);
      });

      it('rejects an unknown initiator with enum', () => {
        const config = probeConfig({ steps: [step.connect(), step.disconnect({ initiator: 'both' })] });
        expectError(config, 'steps[1].initiator', 'enum');
      });
    });
  });

  describe('secrets are never echoed', () => {
    const SECRET = 'Sup3r-Secret-Value';

    it.each([
      { what: 'a header value with CRLF', config: { headers: { Authorization: `Bearer ${SECRET}\r\n` } } },
      { what: 'a reserved header', config: { headers: { 'Sec-WebSocket-Key': SECRET } } },
      {
        what: 'a header value that is too long',
        config: { headers: { 'X-Api-Key': `${SECRET}${'x'.repeat(8192)}` } },
      },
      { what: 'a header value of the wrong type', config: { headers: { 'X-Api-Key': { SECRET } } } },
      { what: 'a header that conflicts', config: { cookies: 'a=1', headers: { Cookie: SECRET } } },
      { what: 'a bad cookie', config: { cookies: `session ${SECRET}` } },
      { what: 'a long cookie string', config: { cookies: `a=${SECRET}${'x'.repeat(8192)}` } },
      {
        what: 'a username with a colon',
        config: { basic_auth: { username: `admin:${SECRET}`, password: 'p' } },
      },
      { what: 'a password of the wrong type', config: { basic_auth: { username: 'u', password: 12345 } } },
      {
        what: 'a password that is too long',
        config: { basic_auth: { username: 'u', password: SECRET.repeat(100) } },
      },
    ])('omits the value for $what', ({ config }) => {
      const errors = errorsOf(probeConfig(config));
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect(error).not.toHaveProperty('value');
      expect(JSON.stringify(errors)).not.toContain(SECRET);
      expect(JSON.stringify(errors)).not.toContain('12345');
    });

    it('carries the rejected value for every other field', () => {
      const errors = errorsOf(
        probeConfig({
          url: 'https://stream.example.com',
          timeout_ms: 31_000,
          interpretation: 'latency',
          ip_version: 'v6',
          protocols: 'chat v2',
          origin: 'app.example.com',
          tls: { server_name: 'bad name' },
          assertions: [assertion('received_message', { operator: 'matches', target: '(' })],
        }),
      );
      expect(errors.map(({ path, value }) => ({ path, value }))).toEqual([
        { path: 'url', value: 'https://stream.example.com' },
        { path: 'timeout_ms', value: 31_000 },
        { path: 'interpretation', value: 'latency' },
        { path: 'protocols[0]', value: 'chat v2' },
        { path: 'origin', value: 'app.example.com' },
        { path: 'ip_version', value: 'v6' },
        { path: 'tls.server_name', value: 'bad name' },
        { path: 'assertions[0].target', value: '(' },
      ]);
    });
  });
});

describe(assertProbeConfig.name, () => {
  it('returns the parsed config with defaults', () => {
    expect(assertProbeConfig(probeConfig())).toEqual({ url: WSS_URL, ...DEFAULTS });
  });

  it('throws a ConfigValidationError carrying every error', () => {
    const input = probeConfig({ url: 'http://x.example', timeout_ms: 50, colour: 'blue' });
    let thrown: unknown;
    try {
      assertProbeConfig(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigValidationError);
    const error = thrown as ConfigValidationError;
    expect(error.name).toBe('ConfigValidationError');
    expect(error.errors.map(({ path, rule }) => ({ path, rule }))).toEqual([
      { path: 'url', rule: 'ws_scheme' },
      { path: 'timeout_ms', rule: 'min' },
      { path: 'colour', rule: 'unknown_field' },
    ]);
    expect(error.errors).toEqual(errorsOf(input));
    expect(error.message).toBe(`invalid configuration: ${error.errors.map((e) => e.message).join('; ')}`);
  });
});
