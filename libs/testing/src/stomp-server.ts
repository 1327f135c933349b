import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

/** The credentials the `/stomp/auth` path accepts. */
export const STOMP_LOGIN = 'probe';
export const STOMP_PASSCODE = 'stomp-passcode-9d4e';
/** The `server` header of CONNECTED. */
export const STOMP_SERVER_NAME = 'wsmon-test-stomp/1.0';
/** How often the server sends heart-beats and `/topic/ticks` messages. */
export const STOMP_TICK_MS = 20;

/**
 * A minimal STOMP 1.2 server over WebSocket on 127.0.0.1 (subprotocol `v12.stomp` when offered).
 *
 * Why not a broker from npm: the STOMP servers published there (stomp-broker-js, stompit's Server)
 * speak STOMP 1.1 on ws 5 or raw TCP, not 1.2 over WebSocket. This one implements what the probe and
 * real brokers (RabbitMQ Web-STOMP, ActiveMQ, Spring) share: CONNECT/STOMP with version negotiation,
 * login/passcode, heart-beat negotiation (it sends EOLs every {@link STOMP_TICK_MS} ms when asked),
 * SUBSCRIBE/UNSUBSCRIBE, SEND, MESSAGE, RECEIPT, ERROR (then close), DISCONNECT, header escaping and
 * content-length. Its spec checks it with @stomp/stompjs, the protocol's reference client library.
 *
 * Paths: `/stomp` (no auth), `/stomp/auth` ({@link STOMP_LOGIN} / {@link STOMP_PASSCODE}, else ERROR
 * `Access refused`), `/stomp/silent` (never answers CONNECT), `/stomp/no-receipt` (never sends RECEIPT),
 * `/stomp/v11` (supports only 1.1: ERROR for a 1.2-only CONNECT).
 * Destinations: `/topic/ticks` (a MESSAGE `tick <n>` every {@link STOMP_TICK_MS} ms), `/queue/echo` (what
 * is SENT there is delivered to its subscribers), `/queue/forbidden` (SUBSCRIBE gets ERROR), anything
 * else (accepted, silent).
 */
export interface StompServer {
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`. */
  url(path?: string): string;
  /** CONNECT frames' headers, in order. */
  readonly connectHeaders: readonly Readonly<Record<string, string>>[];
  /** Commands received, in order, over every connection. */
  readonly commands: readonly string[];
  close(): Promise<void>;
}

interface Frame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/:/g, '\\c');
}

function unescape(value: string): string {
  return value.replace(/\\([\\rnc])/g, (_m, c: string) => ({ r: '\r', n: '\n', c: ':', '\\': '\\' })[c]!);
}

function frame(command: string, headers: Record<string, string>, body = ''): string {
  const raw = command === 'CONNECTED';
  const lines = Object.entries(headers).map(([k, v]) => (raw ? `${k}:${v}` : `${escape(k)}:${escape(v)}`));
  if (body) lines.push(`content-length:${Buffer.byteLength(body)}`);
  return `${command}\n${lines.map((l) => `${l}\n`).join('')}\n${body}\0`;
}

/** Splits buffered text into frames; bare EOLs between frames are heart-beats and are dropped. */
function takeFrames(state: { buffer: string }): Frame[] {
  const frames: Frame[] = [];
  for (;;) {
    state.buffer = state.buffer.replace(/^(\r?\n)+/, '');
    const headEnd = state.buffer.search(/\r?\n\r?\n/);
    if (headEnd === -1) return frames;
    const [command = '', ...lines] = state.buffer.slice(0, headEnd).split(/\r?\n/);
    const headers: Record<string, string> = {};
    const raw = command === 'CONNECT' || command === 'STOMP';
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = raw ? line.slice(0, colon) : unescape(line.slice(0, colon));
      if (!Object.hasOwn(headers, name))
        headers[name] = raw ? line.slice(colon + 1) : unescape(line.slice(colon + 1));
    }
    const bodyStart = headEnd + /^\r?\n\r?\n/.exec(state.buffer.slice(headEnd))![0].length;
    const nul = state.buffer.indexOf('\0', bodyStart);
    if (nul === -1) return frames;
    frames.push({ command, headers, body: state.buffer.slice(bodyStart, nul) });
    state.buffer = state.buffer.slice(nul + 1);
  }
}

/** A text frame's content, whichever form ws hands it over in. */
function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return (Buffer.isBuffer(data) ? data : Buffer.from(new Uint8Array(data))).toString('utf8');
}

export async function startStompServer(): Promise<StompServer> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({
    server,
    handleProtocols: (offered) => (offered.has('v12.stomp') ? 'v12.stomp' : false),
  });
  const connectHeaders: Record<string, string>[] = [];
  const commands: string[] = [];
  /** Subscribers of each destination: the socket and its subscription id. */
  const subscribers = new Map<string, Map<WebSocket, string>>();
  let messageId = 0;
  let tick = 0;
  const deliver = (destination: string, body: string) => {
    for (const [ws, id] of subscribers.get(destination) ?? []) {
      ws.send(
        frame(
          'MESSAGE',
          { subscription: id, 'message-id': String(++messageId), destination, 'content-type': 'text/plain' },
          body,
        ),
      );
    }
  };
  const ticker = setInterval(() => deliver('/topic/ticks', `tick ${++tick}`), STOMP_TICK_MS);

  wss.on('connection', (ws: WebSocket, req) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const state = { buffer: '' };
    let connected = false;
    let heartBeat: NodeJS.Timeout | undefined;
    const error = (message: string, body = '') => {
      ws.send(frame('ERROR', { message }, body));
      ws.close(1000);
    };
    const unsubscribeAll = () => {
      for (const subs of subscribers.values()) subs.delete(ws);
    };
    ws.on('close', () => {
      clearInterval(heartBeat);
      unsubscribeAll();
    });
    ws.on('message', (data: RawData) => {
      state.buffer += rawText(data);
      for (const f of takeFrames(state)) {
        commands.push(f.command);
        const receipt = f.headers.receipt;
        const sendReceipt = () => {
          if (receipt !== undefined && path !== '/stomp/no-receipt')
            ws.send(frame('RECEIPT', { 'receipt-id': receipt }));
        };
        if (!connected) {
          if (f.command !== 'CONNECT' && f.command !== 'STOMP') return error('not connected');
          connectHeaders.push(f.headers);
          if (path === '/stomp/silent') return;
          const versions = (f.headers['accept-version'] ?? '1.0').split(',');
          const supported = path === '/stomp/v11' ? '1.1' : '1.2';
          if (!versions.includes(supported)) return error(`Supported protocol versions are ${supported}`);
          if (
            path === '/stomp/auth' &&
            (f.headers.login !== STOMP_LOGIN || f.headers.passcode !== STOMP_PASSCODE)
          ) {
            return error('Access refused', `Login failed for user ${f.headers.login ?? ''}`);
          }
          connected = true;
          const [, wantsMs = 0] = (f.headers['heart-beat'] ?? '0,0').split(',').map(Number);
          const serverSends = wantsMs > 0 ? STOMP_TICK_MS : 0;
          if (serverSends > 0) heartBeat = setInterval(() => ws.send('\n'), Math.max(serverSends, wantsMs));
          ws.send(
            frame('CONNECTED', {
              version: supported,
              server: STOMP_SERVER_NAME,
              'heart-beat': `${serverSends},0`,
              session: `session-${connectHeaders.length}`,
            }),
          );
          continue;
        }
        switch (f.command) {
          case 'SUBSCRIBE': {
            const destination = f.headers.destination ?? '';
            if (destination === '/queue/forbidden')
              return error('Access refused', `no access to ${destination}`);
            if (!subscribers.has(destination)) subscribers.set(destination, new Map());
            subscribers.get(destination)!.set(ws, f.headers.id ?? '');
            sendReceipt();
            break;
          }
          case 'UNSUBSCRIBE':
            for (const subs of subscribers.values()) if (subs.get(ws) === f.headers.id) subs.delete(ws);
            sendReceipt();
            break;
          case 'SEND':
            if (f.headers.destination === '/queue/echo') deliver('/queue/echo', f.body);
            sendReceipt();
            break;
          case 'DISCONNECT':
            unsubscribeAll();
            sendReceipt();
            break;
          default:
            return error(`unknown command ${f.command}`);
        }
      }
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path = '/stomp') => `ws://127.0.0.1:${port}${path}`,
    connectHeaders,
    commands,
    close: async () => {
      clearInterval(ticker);
      for (const client of wss.clients) client.terminate();
      wss.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
