import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ConfigServiceClient, type CreateTestResponse, type Test } from '@wsmon/proto';
import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from './support/control-plane-process';
import { fieldViolations } from './support/grpc-status';

/**
 * The one schema behind both APIs: each invalid test below is sent over REST and over gRPC, and
 * both must name the same fields and rules. The exhaustive rule-by-rule specs are in
 * libs/contracts; this proves each API runs them.
 */
const valid = {
  name: 'parity',
  probe: { url: 'wss://x.example/ws' } as Record<string, unknown>,
  schedule: { interval_s: 60 } as Record<string, unknown>,
  locations: ['eu-west'],
};

const probe = (fields: Record<string, unknown>) => ({
  ...valid,
  probe: { url: 'wss://x.example/ws', ...fields },
});

const CASES: [string, Record<string, unknown>, [path: string, rule: string][]][] = [
  ['missing url', { ...valid, probe: {} }, [['probe.url', 'required']]],
  ['http scheme', probe({ url: 'http://x.example/' }), [['probe.url', 'ws_scheme']]],
  ['fragment', probe({ url: 'wss://x.example/#a' }), [['probe.url', 'no_fragment']]],
  ['timeout too small', probe({ timeout_ms: 99 }), [['probe.timeout_ms', 'min']]],
  ['timeout too large', probe({ timeout_ms: 30_001 }), [['probe.timeout_ms', 'max']]],
  ['fractional timeout', probe({ timeout_ms: 1000.5 }), [['probe.timeout_ms', 'integer']]],
  ['unknown interpretation', probe({ interpretation: 'latency' }), [['probe.interpretation', 'enum']]],
  ['unknown ping mode', probe({ ping_mode: 'ping' }), [['probe.ping_mode', 'enum']]],
  ['bad subprotocol', probe({ protocols: ['a b'] }), [['probe.protocols[0]', 'token']]],
  ['reserved header', probe({ headers: { Upgrade: 'h2c' } }), [['probe.headers.Upgrade', 'reserved_header']]],
  ['bad cookie', probe({ cookies: 'a=1; oops' }), [['probe.cookies', 'cookie_format']]],
  [
    'colon in user',
    probe({ basic_auth: { username: 'a:b', password: 'p' } }),
    [['probe.basic_auth.username', 'no_colon']],
  ],
  ['bad origin', probe({ origin: 'app.example.com' }), [['probe.origin', 'origin_format']]],
  [
    'tls on ws://',
    probe({ url: 'ws://x.example/', tls: { skip_verify: true } }),
    [['probe.tls', 'requires_wss']],
  ],
  ['not a PEM', probe({ tls: { ca_pem: 'hello' } }), [['probe.tls.ca_pem', 'pem']]],
  [
    'operator not allowed',
    probe({ assertions: [{ type: 'close_code', operator: 'contains', target: 1000 }] }),
    [['probe.assertions[0].operator', 'enum']],
  ],
  [
    'invalid regex',
    probe({ assertions: [{ type: 'received_message', operator: 'matches', target: '(' }] }),
    [['probe.assertions[0].target', 'regex']],
  ],
  [
    'send without ping mode',
    probe({ send_message: 'hi' }),
    [['probe.ping_mode', 'required_for_send_message']],
  ],
  [
    'round trip without one',
    probe({ interpretation: 'round_trip_latency' }),
    [['probe.ping_mode', 'required_for_round_trip']],
  ],
  [
    'steps without connect',
    probe({ steps: [{ type: 'send', message: 'x' }] }),
    [['probe.steps[0].type', 'connect_first']],
  ],
  ['unknown probe field', probe({ timeout: 5 }), [['probe.timeout', 'unknown_field']]],
  ['empty name', { ...valid, name: '' }, [['name', 'min_length']]],
  ['duplicate tags', { ...valid, tags: ['a', 'a'] }, [['tags[1]', 'unique']]],
  [
    'cron and interval',
    { ...valid, schedule: { cron: '* * * * *', interval_s: 5 } },
    [['schedule', 'one_of']],
  ],
  ['bad cron', { ...valid, schedule: { cron: '61 * * * * *' } }, [['schedule.cron', 'cron']]],
  ['interval over a week', { ...valid, schedule: { interval_s: 604_801 } }, [['schedule.interval_s', 'max']]],
  ['no locations', { ...valid, locations: [] }, [['locations', 'min_items']]],
  ['too many retries', { ...valid, retry: { attempts: 6 } }, [['retry.attempts', 'max']]],
  ['alert window too long', { ...valid, alert: { for_minutes: 1441 } }, [['alert.for_minutes', 'max']]],
  ['not a URL', probe({ url: 'chat gateway' }), [['probe.url', 'url']]],
  ['unknown ip version', probe({ ip_version: 'v6' }), [['probe.ip_version', 'enum']]],
  ['subprotocol twice', probe({ protocols: ['chat', 'chat'] }), [['probe.protocols[1]', 'unique']]],
  ['bad header name', probe({ headers: { 'X Bad': 'v' } }), [['probe.headers["X Bad"]', 'header_name']]],
  [
    'header given twice',
    probe({ headers: { 'X-A': '1', 'x-a': '2' } }),
    [['probe.headers["x-a"]', 'duplicate_header']],
  ],
  [
    'line break in a header',
    probe({ headers: { 'X-A': 'a\r\nInjected: 1' } }),
    [['probe.headers["X-A"]', 'header_value']],
  ],
  [
    'origin twice',
    probe({ origin: 'https://app.example.com', headers: { Origin: 'https://x.example' } }),
    [['probe.headers.Origin', 'conflict']],
  ],
  [
    'basic auth without user',
    probe({ basic_auth: { password: 'p' } }),
    [['probe.basic_auth.username', 'required']],
  ],
  ['bad server name', probe({ tls: { server_name: 'not a host' } }), [['probe.tls.server_name', 'hostname']]],
  [
    'too many assertions',
    probe({
      assertions: Array.from({ length: 21 }, () => ({ type: 'close_code', operator: 'is', target: 1000 })),
    }),
    [['probe.assertions', 'max_items']],
  ],
  [
    'round-trip assertion without a round trip',
    probe({
      assertions: [{ type: 'response_time', operator: 'less_than', property: 'round_trip', target: 100 }],
    }),
    [['probe.assertions[0].property', 'requires_round_trip']],
  ],
  [
    'certificate assertion on ws://',
    probe({
      url: 'ws://x.example/',
      assertions: [{ type: 'certificate_days_remaining', operator: 'greater_than', target: 7 }],
    }),
    [['probe.assertions[0].type', 'requires_wss']],
  ],
  [
    'header assertion on a bad name',
    probe({ assertions: [{ type: 'header', operator: 'is', property: 'a b', target: 'x' }] }),
    [['probe.assertions[0].property', 'header_name']],
  ],
  [
    'expect without a message',
    probe({ expect_message: 'pong' }),
    [['probe.expect_message', 'requires_ping_mode_message']],
  ],
  [
    'message mode without a message',
    probe({ ping_mode: 'message' }),
    [['probe.send_message', 'required_for_ping_mode']],
  ],
  [
    'steps and send_message',
    probe({ send_message: 'x', steps: [{ type: 'connect' }] }),
    [['probe.send_message', 'conflicts_with_steps']],
  ],
  [
    'disconnect not last',
    probe({ steps: [{ type: 'connect' }, { type: 'disconnect' }, { type: 'ping' }] }),
    [['probe.steps[1].type', 'disconnect_last']],
  ],
  [
    'hold longer than the deadline',
    probe({ timeout_ms: 1000, steps: [{ type: 'connect' }, { type: 'hold', duration_ms: 1000 }] }),
    [['probe.steps[1].duration_ms', 'within_timeout']],
  ],
  [
    'close code a client cannot send',
    probe({ steps: [{ type: 'connect' }, { type: 'disconnect', code: 1001 }] }),
    [['probe.steps[1].code', 'close_code']],
  ],
  [
    'ping payload over 125 bytes',
    probe({ steps: [{ type: 'connect' }, { type: 'ping', payload: 'x'.repeat(126) }] }),
    [['probe.steps[1].payload', 'max_bytes']],
  ],
  [
    'unknown step',
    probe({ steps: [{ type: 'connect' }, { type: 'sleep' }] }),
    [['probe.steps[1].type', 'enum']],
  ],
  ['name too long', { ...valid, name: 'n'.repeat(201) }, [['name', 'max_length']]],
  ['description too long', { ...valid, description: 'd'.repeat(2001) }, [['description', 'max_length']]],
  ['bad tag', { ...valid, tags: ['has space'] }, [['tags[0]', 'format']]],
  [
    'too many tags',
    { ...valid, tags: Array.from({ length: 51 }, (_, i) => `t${i}`) },
    [['tags', 'max_items']],
  ],
  ['bad location name', { ...valid, locations: ['EU West'] }, [['locations[0]', 'format']]],
  ['location twice', { ...valid, locations: ['eu-west', 'eu-west'] }, [['locations[1]', 'unique']]],
  ['interval of zero', { ...valid, schedule: { interval_s: 0 } }, [['schedule.interval_s', 'min']]],
  ['retry delay too long', { ...valid, retry: { delay_ms: 60_001 } }, [['retry.delay_ms', 'max']]],
  [
    'alert on no location',
    { ...valid, alert: { min_failing_locations: 0 } },
    [['alert.min_failing_locations', 'min']],
  ],
];

let pg: TestPostgres;
let cp: ControlPlaneProcess;
let client: ConfigServiceClient;
const adminKey = newAdminKey();

beforeAll(async () => {
  pg = await startTestPostgres();
  cp = await startControlPlane({
    DATABASE_URL: await pg.createDatabase('parity'),
    WSMON_ADMIN_KEY: adminKey,
    WSMON_SECRET_KEY: newSecretKey(),
  });
  await restClient(cp.httpUrl, adminKey)('POST', '/locations', { name: 'eu-west' });
  client = new ConfigServiceClient(cp.grpcAddress, credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  await cp?.stop();
  await pg?.stop();
});

function createOverGrpc(body: Record<string, unknown>): Promise<ServiceError> {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${adminKey}`);
  const test = { id: '', tags: [], revision: 0, ...body } as unknown as Test;
  return new Promise((resolve, reject) =>
    client.createTest({ test }, metadata, (error: ServiceError | null, response: CreateTestResponse) =>
      error ? resolve(error) : reject(new Error(`accepted: ${JSON.stringify(response)}`)),
    ),
  );
}

describe('one validation for REST and gRPC', () => {
  it('accepts the valid base test on both', async () => {
    expect((await restClient(cp.httpUrl, adminKey)('POST', '/tests', valid)).status).toBe(201);
  });

  it.each(CASES)('%s', async (_name, body, expected) => {
    const rest = await restClient(cp.httpUrl, adminKey)('POST', '/tests', body);
    expect(rest.status).toBe(400);
    const restErrors = (rest.body.error.field_errors as { path: string; rule: string }[]).map((e) => [
      e.path,
      e.rule,
    ]);
    expect(restErrors).toEqual(expected);

    const grpc = await createOverGrpc(body);
    expect(grpc.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(grpc).map((v) => [v.field, v.reason])).toEqual(
      expected.map(([path, rule]) => [`test.${path}`, rule]),
    );
  });
});
