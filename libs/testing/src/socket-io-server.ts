import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Server } from 'socket.io';

/** The `auth.token` the `/auth` namespace requires. */
export const SOCKET_IO_TOKEN = 'socket-io-token-5b7c';
/** The server id of the `welcome` event. */
export const SOCKET_IO_SERVER_ID = 'sio-1';

/** Ping timings of the test server: short, so a hold sees several pings in a fraction of a second. */
export const SOCKET_IO_PING = { intervalMs: 100, timeoutMs: 100 } as const;

/**
 * A real Socket.IO v4 server (the `socket.io` library, Engine.IO v4) on 127.0.0.1, WebSocket transport
 * only, pinging every {@link SOCKET_IO_PING} ms.
 *
 * Namespaces:
 * - `/`: emits `welcome` `{"server_id":"sio-1"}` on connect; acknowledges `echo` with its arguments;
 *   answers `ping-me` with a `pong-you` event carrying the same arguments; `no-ack` is never
 *   acknowledged.
 * - `/auth`: `auth.token` must be {@link SOCKET_IO_TOKEN}, else CONNECT_ERROR `not authorized` with
 *   data `{"code":"E_AUTH"}`; then as `/`.
 * - `/kick`: disconnects every socket 20 ms after it connects.
 * Any other namespace gets Socket.IO's own CONNECT_ERROR `Invalid namespace`.
 *
 * The query parameter `pings=stop` makes the server stop pinging that connection (the silent drop),
 * without closing it for the missing pongs either.
 */
export interface SocketIoServer {
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`. */
  url(path?: string): string;
  /** The auth objects received by `/auth`, in order. */
  readonly authReceived: readonly unknown[];
  close(): Promise<void>;
}

/** The private ping scheduling of an Engine.IO socket, reached into only to stop it. */
interface EnginePingInternals {
  pingIntervalTimer: NodeJS.Timeout | null;
  schedulePing: () => void;
}

export async function startSocketIoServer(): Promise<SocketIoServer> {
  const server = http.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const io = new Server(server, {
    transports: ['websocket'],
    pingInterval: SOCKET_IO_PING.intervalMs,
    pingTimeout: SOCKET_IO_PING.timeoutMs,
  });
  const authReceived: unknown[] = [];
  const kicks = new Set<NodeJS.Timeout>();

  io.engine.on('connection', (socket: unknown) => {
    const request = (socket as { request: http.IncomingMessage }).request;
    if (!new URL(request.url ?? '/', 'http://x').searchParams.has('pings', 'stop')) return;
    const internals = socket as EnginePingInternals;
    if (internals.pingIntervalTimer) clearTimeout(internals.pingIntervalTimer);
    internals.schedulePing = () => undefined;
  });

  for (const name of ['/', '/auth']) {
    const nsp = io.of(name);
    if (name === '/auth') {
      nsp.use((socket, next) => {
        authReceived.push(socket.handshake.auth);
        if ((socket.handshake.auth as { token?: unknown }).token === SOCKET_IO_TOKEN) return next();
        next(Object.assign(new Error('not authorized'), { data: { code: 'E_AUTH' } }));
      });
    }
    nsp.on('connection', (socket) => {
      socket.emit('welcome', { server_id: SOCKET_IO_SERVER_ID });
      socket.on('echo', (...args: unknown[]) => {
        const ack = args.pop();
        if (typeof ack === 'function') (ack as (...a: unknown[]) => void)(...args);
      });
      socket.on('ping-me', (...args: unknown[]) => socket.emit('pong-you', ...args));
      socket.on('no-ack', () => undefined);
    });
  }
  io.of('/kick').on('connection', (socket) => {
    const timer = setTimeout(() => {
      kicks.delete(timer);
      socket.disconnect(true);
    }, 20);
    kicks.add(timer);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path = '/') => `ws://127.0.0.1:${port}${path}`,
    authReceived,
    close: async () => {
      for (const timer of kicks) clearTimeout(timer);
      io.disconnectSockets(true);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
    },
  };
}
