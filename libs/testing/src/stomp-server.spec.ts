import { Client, type IMessage, type IFrame } from '@stomp/stompjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  STOMP_LOGIN,
  STOMP_PASSCODE,
  STOMP_SERVER_NAME,
  startStompServer,
  type StompServer,
} from './stomp-server';

let server: StompServer;

beforeAll(async () => {
  server = await startStompServer();
});

afterAll(async () => {
  await server.close();
});

/** A @stomp/stompjs client (the reference STOMP client library) on the test server, without reconnects. */
function stompClient(path: string, connectHeaders: Record<string, string> = {}) {
  return new Client({
    webSocketFactory: () => new WebSocket(server.url(path), ['v12.stomp']),
    connectHeaders,
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
  });
}

function connected(client: Client): Promise<IFrame> {
  return new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
    client.onWebSocketError = () => reject(new Error('websocket error'));
    client.activate();
  });
}

describe(startStompServer.name, () => {
  it('is understood by @stomp/stompjs: connect, subscribe, send, receive, disconnect', async () => {
    const client = stompClient('/stomp/auth', { login: STOMP_LOGIN, passcode: STOMP_PASSCODE });
    try {
      const frame = await connected(client);
      expect(frame.headers).toMatchObject({ version: '1.2', server: STOMP_SERVER_NAME });
      const received = new Promise<IMessage>((resolve) => client.subscribe('/queue/echo', resolve));
      client.publish({ destination: '/queue/echo', body: 'héllo: wörld' });
      const message = await received;
      expect(message.body).toBe('héllo: wörld');
      expect(message.headers.destination).toBe('/queue/echo');
    } finally {
      await client.deactivate();
    }
  });

  it('answers a wrong passcode with an ERROR frame @stomp/stompjs reports', async () => {
    const client = stompClient('/stomp/auth', { login: STOMP_LOGIN, passcode: 'wrong' });
    try {
      await expect(connected(client)).rejects.toThrow('Access refused');
    } finally {
      await client.deactivate();
    }
  });
});
