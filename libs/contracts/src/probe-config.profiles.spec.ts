import { describe, expect, it } from 'vitest';
import type { ConfigFieldError } from './config-errors';
import { parseProbeConfig, PROFILES, type ProbeConfig } from './probe-config.schema';

type Input = Record<string, unknown>;

const URL = 'wss://realtime.example.com/';

/** A configuration of `profile` with its options object. */
function profiled(profile: string, options?: Input, overrides: Input = {}): Input {
  return { url: URL, profile, ...(options === undefined ? {} : { [profile]: options }), ...overrides };
}

function parsed(input: Input): ProbeConfig {
  const outcome = parseProbeConfig(input);
  if (!outcome.ok) throw new Error(`expected a valid configuration: ${JSON.stringify(outcome.errors)}`);
  return outcome.value;
}

function errorsOf(input: Input): readonly ConfigFieldError[] {
  const outcome = parseProbeConfig(input);
  if (outcome.ok) throw new Error('expected field errors');
  return outcome.errors;
}

/** Exactly one error, with this path and rule. */
function expectError(input: Input, path: string, rule: string): ConfigFieldError {
  const errors = errorsOf(input);
  expect(errors.map((e) => ({ path: e.path, rule: e.rule }))).toEqual([{ path, rule }]);
  return errors[0]!;
}

const STICKY = { server_id_path: '$.server_id' };

describe('probe profiles', () => {
  describe('the profile field', () => {
    it('is left out of a configuration that does not give it: raw, unchanged', () => {
      expect(parsed({ url: URL })).not.toHaveProperty('profile');
      expect(parsed({ url: URL, profile: 'raw' }).profile).toBe('raw');
    });

    it.each(PROFILES.filter((p) => p !== 'raw' && p !== 'sticky_session'))(
      'accepts %s without options, or with empty options filled with defaults',
      (profile) => {
        expect(parsed(profiled(profile)).profile).toBe(profile);
        parsed(profiled(profile, {}));
      },
    );

    it('rejects an unknown profile with enum', () => {
      expectError(profiled('mqtt'), 'profile', 'enum');
    });

    it.each([
      ['stomp', 'graphql'],
      ['socket_io', 'raw'],
      ['json_rpc', 'stomp'],
    ])('rejects %s options under profile %s with requires_profile', (options, profile) => {
      const error = expectError({ url: URL, profile, [options]: {} }, options, 'requires_profile');
      expect(error.message).toBe(`${options}: only applies when profile is ${options}`);
    });

    it('rejects options without a profile (raw)', () => {
      expectError({ url: URL, graphql: {} }, 'graphql', 'requires_profile');
    });

    it.each([
      ['steps', { steps: [{ type: 'connect' }] }],
      ['send_message', { send_message: 'x', ping_mode: 'message' }],
      ['expect_message', { expect_message: 'x', ping_mode: 'message', send_message: 'x' }],
    ])('rejects %s with a profile', (field, extra) => {
      const errors = errorsOf(profiled('graphql', undefined, extra));
      expect(errors).toContainEqual(expect.objectContaining({ path: field, rule: 'conflicts_with_profile' }));
    });

    it('rejects a ping mode with a profile', () => {
      expectError(
        profiled('stomp', undefined, { ping_mode: 'protocol' }),
        'ping_mode',
        'conflicts_with_profile',
      );
    });

    it('lets every profile but sticky_session measure round_trip_latency', () => {
      parsed(profiled('json_rpc', undefined, { interpretation: 'round_trip_latency' }));
      parsed(
        profiled('graphql', undefined, {
          assertions: [{ type: 'response_time', operator: 'less_than', property: 'round_trip', target: 100 }],
        }),
      );
      expectError(
        profiled('sticky_session', STICKY, { interpretation: 'round_trip_latency' }),
        'interpretation',
        'required_for_round_trip',
      );
    });
  });

  describe('graphql', () => {
    it('applies its defaults', () => {
      expect(parsed(profiled('graphql', {})).graphql).toEqual({
        protocol: 'graphql-transport-ws',
        ping: false,
      });
    });

    it('takes a subscription with variables and an init payload', () => {
      const graphql = {
        protocol: 'subscriptions-transport-ws',
        init_payload: { authToken: 'x', nested: { list: [1, null] } },
        ack_timeout_ms: 500,
        subscribe: { query: 'subscription { a }', variables: { n: 1 }, operation_name: 'A', timeout_ms: 900 },
      };
      expect(parsed(profiled('graphql', graphql)).graphql).toEqual({ ...graphql, ping: false });
    });

    it('rejects ping with the legacy protocol', () => {
      expectError(
        profiled('graphql', { protocol: 'subscriptions-transport-ws', ping: true }),
        'graphql.ping',
        'requires_graphql_transport_ws',
      );
    });

    it('rejects ping_timeout_ms without ping', () => {
      expectError(profiled('graphql', { ping_timeout_ms: 100 }), 'graphql.ping_timeout_ms', 'requires_ping');
    });

    it('rejects a blank query', () => {
      expectError(
        profiled('graphql', { subscribe: { query: '  ' } }),
        'graphql.subscribe.query',
        'not_blank',
      );
    });

    it('requires the profile subprotocol among the offered ones', () => {
      parsed(profiled('graphql', {}, { protocols: ['graphql-transport-ws', 'x'] }));
      const error = expectError(
        profiled('graphql', {}, { protocols: ['graphql-ws'] }),
        'protocols',
        'profile_subprotocol',
      );
      expect(error.message).toContain('graphql-transport-ws');
    });

    it('never echoes the init payload', () => {
      const errors = errorsOf(
        profiled('graphql', { init_payload: { token: 'secret-value-1', n: Infinity } }),
      );
      expect(errors.length).toBeGreaterThan(0);
      expect(JSON.stringify(errors)).not.toContain('secret-value-1');
    });

    it('rejects an init payload over 64 KiB', () => {
      expectError(
        profiled('graphql', { init_payload: { big: 'x'.repeat(70_000) } }),
        'graphql.init_payload',
        'max_bytes',
      );
    });
  });

  describe('socket_io', () => {
    it('applies its defaults', () => {
      expect(parsed(profiled('socket_io', {})).socket_io).toEqual({ namespace: '/' });
      expect(parsed(profiled('socket_io', { emit: { event: 'e' } })).socket_io?.emit).toEqual({
        event: 'e',
        args: [],
        ack: true,
      });
    });

    it.each([
      [{ namespace: 'admin' }, 'socket_io.namespace', 'namespace'],
      [{ path: 'socket.io' }, 'socket_io.path', 'path'],
      [{ emit: { event: '' } }, 'socket_io.emit.event', 'not_blank'],
      [{ emit: { event: 'e', args: 'x' } }, 'socket_io.emit.args', 'type'],
      [{ emit: { event: 'e', ack: false, timeout_ms: 10 } }, 'socket_io.emit.timeout_ms', 'requires_ack'],
      [{ hold_ms: 10_000 }, 'socket_io.hold_ms', 'within_timeout'],
      [{ transport: 'polling' }, 'socket_io.transport', 'unknown_field'],
    ])('rejects %j', (options, path, rule) => {
      expectError(profiled('socket_io', options), path, rule);
    });

    it('rejects a path that contradicts the URL path, and accepts either alone', () => {
      parsed(profiled('socket_io', {}, { url: 'wss://h/rt/' }));
      parsed(profiled('socket_io', { path: '/rt/' }, { url: 'wss://h/rt/' }));
      expectError(
        profiled('socket_io', { path: '/a/' }, { url: 'wss://h/b/' }),
        'socket_io.path',
        'conflicts_with_url',
      );
    });

    it('never echoes the auth object', () => {
      const errors = errorsOf(profiled('socket_io', { auth: 'token-value-7' }));
      expect(errors[0]).toMatchObject({ path: 'socket_io.auth', rule: 'type' });
      expect(errors[0]).not.toHaveProperty('value');
    });
  });

  describe('stomp', () => {
    it('applies its defaults', () => {
      expect(parsed(profiled('stomp', {})).stomp).toEqual({ heart_beat: { send_ms: 0, receive_ms: 0 } });
    });

    it('accepts colons in a passcode (CONNECT headers split at the first colon)', () => {
      parsed(profiled('stomp', { login: 'u', passcode: 'p:a:ss' }));
    });

    it('rejects a line break in a passcode, without echoing it', () => {
      const error = expectError(
        profiled('stomp', { passcode: 'pass\nword' }),
        'stomp.passcode',
        'stomp_header',
      );
      expect(error).not.toHaveProperty('value');
    });

    it('rejects a blank destination', () => {
      expectError(
        profiled('stomp', { subscribe: { destination: '' } }),
        'stomp.subscribe.destination',
        'not_blank',
      );
    });
  });

  describe('json_rpc', () => {
    it('applies its defaults', () => {
      expect(parsed(profiled('json_rpc', {})).json_rpc).toEqual({ mode: 'subscribe' });
      expect(parsed(profiled('json_rpc', { freshness: {} })).json_rpc?.freshness).toEqual({
        increasing_block_number: false,
        block_number_path: '$.number',
        timestamp_path: '$.timestamp',
      });
    });

    it('requires a method in call mode', () => {
      expectError(profiled('json_rpc', { mode: 'call' }), 'json_rpc.method', 'required_for_call');
      parsed(profiled('json_rpc', { mode: 'call', method: 'eth_blockNumber', params: [] }));
    });

    it.each(['notifications', 'notification_timeout_ms', 'unsubscribe_method'])(
      'rejects %s in call mode',
      (field) => {
        const value = field === 'unsubscribe_method' ? 'x_unsub' : 2;
        expectError(
          profiled('json_rpc', { mode: 'call', method: 'm', [field]: value }),
          `json_rpc.${field}`,
          'requires_subscribe',
        );
      },
    );

    it('needs two notifications to compare block numbers', () => {
      expectError(
        profiled('json_rpc', { freshness: { increasing_block_number: true } }),
        'json_rpc.notifications',
        'required_for_increasing',
      );
      parsed(profiled('json_rpc', { notifications: 2, freshness: { increasing_block_number: true } }));
    });

    it.each([
      [{ method: 'eth subscribe' }, 'json_rpc.method', 'method'],
      [{ freshness: { block_number_path: 'number' } }, 'json_rpc.freshness.block_number_path', 'json_path'],
      [{ freshness: { max_age_s: 0 } }, 'json_rpc.freshness.max_age_s', 'min'],
      [{ notifications: 0 }, 'json_rpc.notifications', 'min'],
    ])('rejects %j', (options, path, rule) => {
      expectError(profiled('json_rpc', options), path, rule);
    });
  });

  describe('sticky_session', () => {
    it('applies its defaults', () => {
      expect(parsed(profiled('sticky_session', STICKY)).sticky_session).toEqual({
        connections: 3,
        ...STICKY,
      });
    });

    it('needs exactly one source of the server id', () => {
      expectError(profiled('sticky_session', {}), 'sticky_session', 'server_id_source');
      expectError(profiled('sticky_session'), 'sticky_session', 'server_id_source');
      expectError(
        profiled('sticky_session', { ...STICKY, server_id_regex: 'x' }),
        'sticky_session',
        'server_id_source',
      );
    });

    it.each([
      [{ server_id_regex: '(' }, 'sticky_session.server_id_regex', 'regex'],
      [{ ...STICKY, connections: 1 }, 'sticky_session.connections', 'min'],
      [{ ...STICKY, connections: 11 }, 'sticky_session.connections', 'max'],
      [{ server_id_path: '$..id' }, 'sticky_session.server_id_path', 'json_path'],
    ])('rejects %j', (options, path, rule) => {
      expectError(profiled('sticky_session', options), path, rule);
    });
  });

  describe('json_path assertions', () => {
    const withAssertion = (a: Input) => ({ url: URL, assertions: [{ type: 'json_path', ...a }] });

    it.each([
      { property: '$.a', operator: 'exists' },
      { property: '$.a.b[0]', operator: 'equals', target: null },
      { property: "$['x-id']", operator: 'equals', target: true },
      { property: '$[2]', operator: 'less_than', target: 5 },
      { property: '$.n', operator: 'greater_than', target: -1.5 },
      { property: '$.s', operator: 'matches', target: '^ok' },
    ])('accepts %j', (a) => {
      parsed(withAssertion(a));
    });

    it.each([
      [{ property: '$.a', operator: 'exists', target: 1 }, 'assertions[0].target', 'no_target'],
      [{ property: '$.a', operator: 'equals' }, 'assertions[0].target', 'required'],
      [{ property: '$.a', operator: 'less_than', target: '5' }, 'assertions[0].target', 'number'],
      [{ property: '$.a', operator: 'matches', target: 5 }, 'assertions[0].target', 'regex'],
      [{ property: '$.a', operator: 'matches', target: '(' }, 'assertions[0].target', 'regex'],
      [{ property: 'a.b', operator: 'exists' }, 'assertions[0].property', 'json_path'],
      [{ property: '$.a[*]', operator: 'exists' }, 'assertions[0].property', 'json_path'],
      [{ property: '$.a', operator: 'contains', target: 'x' }, 'assertions[0].operator', 'enum'],
    ])('rejects %j', (a, path, rule) => {
      expectError(withAssertion(a), path, rule);
    });
  });
});
