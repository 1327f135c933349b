import type { ProbeConfigInput, ProbeResult } from '@wsmon/contracts';
import {
  SOCKET_IO_PING,
  SOCKET_IO_SERVER_ID,
  SOCKET_IO_TOKEN,
  startBackendPool,
  startSocketIoServer,
  type SocketIoServer,
} from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProbe } from '../probe';
import { compileSocketIo, engineIoUrl, parseSocketPacket } from './socket-io';

let server: SocketIoServer;

beforeAll(async () => {
  server = await startSocketIoServer();
});

afterAll(async () => {
  await server.close();
});

function socketIoProbe(socketIo: Record<string, unknown> = {}, extra: Partial<ProbeConfigInput> = {}) {
  return runProbe({
    url: server.url(),
    timeout_ms: 3000,
    profile: 'socket_io',
    socket_io: socketIo,
    ...extra,
  });
}

const phaseNames = (result: ProbeResult) =>
  result.profile?.phases.map((p) => `${p.name}:${p.passed ? 'ok' : 'failed'}`);

describe(compileSocketIo.name, () => {
  it('builds the Engine.IO URL from the path option, the URL path or the default', () => {
    expect(engineIoUrl({ url: 'ws://h:1/' }, {})).toBe('ws://h:1/socket.io/?EIO=4&transport=websocket');
    expect(engineIoUrl({ url: 'ws://h/?token=x' }, { path: '/rt/' })).toBe(
      'ws://h/rt/?token=x&EIO=4&transport=websocket',
    );
    expect(engineIoUrl({ url: 'wss://h/custom/?EIO=3' }, {})).toBe(
      'wss://h/custom/?EIO=4&transport=websocket',
    );
  });

  it.each([
    ['0{"sid":"x"}', { type: 0, nsp: '/', id: undefined, data: { sid: 'x' } }],
    ['0/admin,{"sid":"x"}', { type: 0, nsp: '/admin', id: undefined, data: { sid: 'x' } }],
    ['2/admin,12["ev",1]', { type: 2, nsp: '/admin', id: 12, data: ['ev', 1] }],
    ['37[]', { type: 3, nsp: '/', id: 7, data: [] }],
    ['1', { type: 1, nsp: '/', id: undefined, data: undefined }],
  ])('parses the Socket.IO packet %s', (raw, packet) => {
    expect(parseSocketPacket(raw)).toEqual(packet);
  });

  it.each(['9', 'x', '2["unterminated'])('rejects %s as a Socket.IO packet', (raw) => {
    expect(parseSocketPacket(raw)).toBeUndefined();
  });

  it('opens, connects to the namespace and records the open packet', async () => {
    const result = await socketIoProbe({}, { interpretation: 'round_trip_latency' });
    expect(result.failure).toBeNull();
    expect(result.url).toBe(`${server.url('/socket.io/')}?EIO=4&transport=websocket`);
    expect(phaseNames(result)).toEqual(['open:ok', 'namespace_connect:ok']);
    expect(result.profile?.facts).toMatchObject({
      namespace: '/',
      ping_interval_ms: SOCKET_IO_PING.intervalMs,
      ping_timeout_ms: SOCKET_IO_PING.timeoutMs,
    });
    expect(result.profile?.facts.sid).toEqual(expect.any(String));
    expect(result.profile?.facts.socket_id).toEqual(expect.any(String));
    expect(result.value).toBeGreaterThan(0);
  });

  it('times an emit-to-ack round trip and checks the ack with JSON assertions', async () => {
    const result = await socketIoProbe(
      { emit: { event: 'echo', args: [{ ok: true, n: 41 }] } },
      {
        interpretation: 'round_trip_latency',
        assertions: [
          { type: 'json_path', property: '$[0].ok', operator: 'equals', target: true },
          { type: 'json_path', property: '$[0].n', operator: 'greater_than', target: 40 },
        ],
      },
    );
    expect(result.failure).toBeNull();
    expect(phaseNames(result)).toEqual(['open:ok', 'namespace_connect:ok', 'emit:ok']);
    expect(result.value).toBe(result.profile?.facts.ack_ms);
    expect(JSON.parse(result.last_message!.data)).toEqual([{ ok: true, n: 41 }]);
  });

  it('waits for a named event', async () => {
    const result = await socketIoProbe({ expect_event: { event: 'welcome' } });
    expect(result.failure).toBeNull();
    expect(JSON.parse(result.last_message!.data)).toEqual([{ server_id: SOCKET_IO_SERVER_ID }]);
  });

  it('emits without ack and times the answering event', async () => {
    const result = await socketIoProbe(
      { emit: { event: 'ping-me', args: ['x'], ack: false }, expect_event: { event: 'pong-you' } },
      { interpretation: 'round_trip_latency' },
    );
    expect(result.failure).toBeNull();
    expect(JSON.parse(result.last_message!.data)).toEqual(['x']);
    expect(result.value).toBeGreaterThan(0);
  });

  it('sends the auth object of a namespace and scrubs it', async () => {
    const result = await socketIoProbe({ namespace: '/auth', auth: { token: SOCKET_IO_TOKEN } });
    expect(result.failure).toBeNull();
    expect(server.authReceived.at(-1)).toEqual({ token: SOCKET_IO_TOKEN });
    expect(JSON.stringify(result)).not.toContain(SOCKET_IO_TOKEN);
  });

  it('names a connect error (auth refused) with its message', async () => {
    const result = await socketIoProbe({ namespace: '/auth', auth: { token: 'wrong-token-1234' } });
    expect(result.failure).toMatchObject({
      reason: 'protocol_error',
      cause: 'socketio_connect_error',
      category: 'INVALID_REQUEST',
    });
    expect(result.failure?.message).toContain('not authorized');
    expect(result.profile?.facts).toMatchObject({
      connect_error: 'not authorized',
      connect_error_data: '{"code":"E_AUTH"}',
    });
    expect(JSON.stringify(result)).not.toContain('wrong-token-1234');
  });

  it('names the connect error of an unknown namespace', async () => {
    const result = await socketIoProbe({ namespace: '/nope' });
    expect(result.failure).toMatchObject({ cause: 'socketio_connect_error' });
    expect(result.failure?.message).toContain('Invalid namespace');
  });

  it('fails with socketio_ack_timeout when the ack never comes', async () => {
    const result = await socketIoProbe({ emit: { event: 'no-ack', timeout_ms: 150 } });
    expect(result.failure).toMatchObject({ reason: 'ws_reply_timeout', cause: 'socketio_ack_timeout' });
  });

  it('fails with socketio_event_timeout when the event never comes', async () => {
    const result = await socketIoProbe({ expect_event: { event: 'never', timeout_ms: 150 } });
    expect(result.failure).toMatchObject({ cause: 'socketio_event_timeout' });
  });

  it('answers the server pings while holding', async () => {
    const result = await socketIoProbe({ hold_ms: 350 });
    expect(result.failure).toBeNull();
    expect(phaseNames(result)).toEqual(['open:ok', 'namespace_connect:ok', 'hold:ok']);
    expect(result.profile?.facts.pings_answered).toBeGreaterThanOrEqual(2);
  });

  it('fails the hold when the pings stop (the silent drop)', async () => {
    const result = await runProbe({
      url: server.url('/?pings=stop'),
      timeout_ms: 3000,
      profile: 'socket_io',
      socket_io: { hold_ms: 1500 },
    });
    expect(result.failure).toMatchObject({
      reason: 'ws_reply_timeout',
      cause: 'socketio_ping_timeout',
      category: 'TIMEOUT',
    });
    expect(result.profile?.facts.pings_answered).toBe(0);
    // Detected after pingInterval + pingTimeout, not at the end of the hold.
    const hold = result.profile!.phases.find((p) => p.name === 'hold')!;
    expect(hold.duration_ms).toBeLessThan(1500);
  });

  it('fails when the server disconnects the socket', async () => {
    const result = await socketIoProbe({ namespace: '/kick', hold_ms: 1000 });
    expect(result.failure).toMatchObject({ cause: 'socketio_disconnected', category: 'CONNRESET' });
  });

  it('fails with socketio_open_timeout on a WebSocket that is not Engine.IO', async () => {
    const pool = await startBackendPool();
    try {
      const result = await runProbe({
        url: pool.url('/mute'),
        timeout_ms: 2000,
        profile: 'socket_io',
        socket_io: { connect_timeout_ms: 150 },
      });
      expect(result.failure).toMatchObject({ cause: 'socketio_open_timeout' });
      const invalid = await runProbe({ url: pool.url('/sticky'), timeout_ms: 2000, profile: 'socket_io' });
      expect(invalid.failure).toMatchObject({ cause: 'socketio_invalid_packet' });
    } finally {
      await pool.close();
    }
  });
});
