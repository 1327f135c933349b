import type { ProbeConfigInput, ProbeResult } from '@wsmon/contracts';
import {
  STOMP_LOGIN,
  STOMP_PASSCODE,
  STOMP_SERVER_NAME,
  startStompServer,
  type StompServer,
} from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProbe } from '../probe';
import { compileStomp, encodeFrame, StompFrameReader } from './stomp';

let server: StompServer;

beforeAll(async () => {
  server = await startStompServer();
});

afterAll(async () => {
  await server.close();
});

function stompProbe(
  path: string,
  stomp: Record<string, unknown> = {},
  extra: Partial<ProbeConfigInput> = {},
) {
  return runProbe({ url: server.url(path), timeout_ms: 3000, profile: 'stomp', stomp, ...extra });
}

const phaseNames = (result: ProbeResult) =>
  result.profile?.phases.map((p) => `${p.name}:${p.passed ? 'ok' : 'failed'}`);

describe(StompFrameReader.name, () => {
  it('reads frames split across messages, several per message, heart-beats between them', () => {
    const reader = new StompFrameReader();
    reader.push('\nMESSAGE\nsubscription:0\nmessage-id:1\nx\\cy:a\\nb\n\nbo');
    expect(reader.next()).toBeUndefined();
    reader.push('dy\0\n\nRECEIPT\nreceipt-id:7\n\n\0');
    expect(reader.next()).toEqual({
      command: 'MESSAGE',
      headers: { subscription: '0', 'message-id': '1', 'x:y': 'a\nb' },
      body: 'body',
    });
    expect(reader.next()).toEqual({ command: 'RECEIPT', headers: { 'receipt-id': '7' }, body: '' });
    expect(reader.heartBeats).toBe(3);
  });

  it('honours content-length (a body may contain NUL) and keeps the first of repeated headers', () => {
    const reader = new StompFrameReader();
    reader.push('MESSAGE\ncontent-length:4\nfoo:1\nfoo:2\n\na\0bc\0');
    expect(reader.next()).toEqual({
      command: 'MESSAGE',
      headers: { 'content-length': '4', foo: '1' },
      body: 'a\0bc',
    });
  });

  it('does not unescape CONNECTED headers, and escapes all but CONNECT when encoding', () => {
    const reader = new StompFrameReader();
    reader.push('CONNECTED\nserver:a\\cb\n\n\0');
    expect(reader.next()?.headers.server).toBe('a\\cb');
    expect(encodeFrame('CONNECT', { passcode: 'p:w' })).toBe('CONNECT\npasscode:p:w\n\n\0');
    expect(encodeFrame('SEND', { destination: '/a:b' }, 'x')).toBe('SEND\ndestination:/a\\cb\n\nx\0');
  });
});

describe(compileStomp.name, () => {
  it('connects, records CONNECTED, disconnects with a receipt', async () => {
    const result = await stompProbe('/stomp', {}, { interpretation: 'round_trip_latency' });
    expect(result.failure).toBeNull();
    expect(phaseNames(result)).toEqual(['connect:ok', 'disconnect:ok']);
    expect(result.profile?.facts).toMatchObject({
      version: '1.2',
      server: STOMP_SERVER_NAME,
      heart_beat: '0,0',
    });
    expect(result.value).toBeGreaterThan(0);
    expect(server.connectHeaders.at(-1)).toMatchObject({
      'accept-version': '1.2',
      host: '127.0.0.1',
      'heart-beat': '0,0',
    });
    expect(server.commands.slice(-2)).toEqual(['CONNECT', 'DISCONNECT']);
  });

  it('sends login and passcode, and scrubs the passcode', async () => {
    const result = await stompProbe('/stomp/auth', {
      login: STOMP_LOGIN,
      passcode: STOMP_PASSCODE,
      host: 'vhost-1',
    });
    expect(result.failure).toBeNull();
    expect(server.connectHeaders.at(-1)).toMatchObject({
      login: STOMP_LOGIN,
      passcode: STOMP_PASSCODE,
      host: 'vhost-1',
    });
    expect(JSON.stringify(result)).not.toContain(STOMP_PASSCODE);
  });

  it('names the ERROR answering CONNECT (auth refused)', async () => {
    const result = await stompProbe('/stomp/auth', { login: STOMP_LOGIN, passcode: 'wrong-passcode' });
    expect(result.failure).toMatchObject({
      reason: 'protocol_error',
      cause: 'stomp_connect_error',
      category: 'INVALID_REQUEST',
    });
    expect(result.failure?.message).toContain('Access refused');
    expect(result.profile?.facts.error_message).toBe('Access refused');
    expect(JSON.stringify(result)).not.toContain('wrong-passcode');
  });

  it('names a server that does not speak STOMP 1.2', async () => {
    const result = await stompProbe('/stomp/v11');
    expect(result.failure).toMatchObject({ cause: 'stomp_connect_error' });
    expect(result.failure?.message).toContain('1.1');
  });

  it('fails with stomp_connected_timeout when CONNECT is not answered', async () => {
    const result = await stompProbe('/stomp/silent', { connect_timeout_ms: 150 });
    expect(result.failure).toMatchObject({ reason: 'ws_reply_timeout', cause: 'stomp_connected_timeout' });
  });

  it('subscribes and expects a MESSAGE, checked by assertions', async () => {
    const result = await stompProbe(
      '/stomp',
      { subscribe: { destination: '/topic/ticks' } },
      { assertions: [{ type: 'received_message', operator: 'matches', target: '^tick \\d+$' }] },
    );
    expect(result.failure).toBeNull();
    expect(phaseNames(result)).toEqual(['connect:ok', 'subscribe:ok', 'disconnect:ok']);
    expect(result.last_message?.data).toMatch(/^tick \d+$/);
    expect(server.commands.slice(-3)).toEqual(['SUBSCRIBE', 'UNSUBSCRIBE', 'DISCONNECT']);
  });

  it('sends to a quiet destination and receives its own message back', async () => {
    const result = await stompProbe('/stomp', {
      subscribe: { destination: '/queue/echo', send: 'probe: ✓' },
    });
    expect(result.failure).toBeNull();
    expect(result.last_message?.data).toBe('probe: ✓');
  });

  it('names the ERROR answering a forbidden SUBSCRIBE', async () => {
    const result = await stompProbe('/stomp', { subscribe: { destination: '/queue/forbidden' } });
    expect(result.failure).toMatchObject({ cause: 'stomp_error', category: 'INVALID_REQUEST' });
  });

  it('fails with stomp_message_timeout when no MESSAGE arrives', async () => {
    const result = await stompProbe('/stomp', {
      subscribe: { destination: '/queue/empty', timeout_ms: 100 },
    });
    expect(result.failure).toMatchObject({ cause: 'stomp_message_timeout' });
  });

  it('fails with stomp_receipt_timeout when DISCONNECT gets no RECEIPT', async () => {
    const result = await stompProbe('/stomp/no-receipt', { receipt_timeout_ms: 100 });
    expect(result.failure).toMatchObject({ cause: 'stomp_receipt_timeout' });
  });

  it('negotiates heart-beats: counts the server beats and sends its own', async () => {
    const result = await stompProbe('/stomp', {
      heart_beat: { send_ms: 10, receive_ms: 20 },
      subscribe: { destination: '/queue/empty', timeout_ms: 120 },
    });
    expect(result.failure).toMatchObject({ cause: 'stomp_message_timeout' });
    expect(result.profile?.facts.heart_beat).toBe('20,0');
    expect(result.profile?.facts.heart_beats_received).toBeGreaterThan(0);
  });
});
