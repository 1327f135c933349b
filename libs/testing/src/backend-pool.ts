import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';

/** The backends a {@link BackendPool} pretends to balance over. */
export const POOL_BACKENDS = ['backend-a', 'backend-b', 'backend-c'] as const;

/**
 * A load balancer and its backends, imitated on 127.0.0.1: each connection's first message names the
 * backend that serves it, as `{"type":"welcome","server_id":"<id>"}`.
 *
 * Paths:
 * - `/sticky`: always `backend-a` (affinity works).
 * - `/round-robin`: `backend-a`, `backend-b`, `backend-c`, … one per connection (affinity is broken).
 * - `/text`: `served by backend-a` as plain text.
 * - `/no-id`: `{"type":"welcome"}`, without a server id.
 * - `/mute`: sends nothing.
 * - `/on-request`: names the backend only in answer to a first message from the client.
 * - `/once`: names `backend-a` on the first connection to this path; closes every later one with 1013
 *   (try again later) before naming anyone.
 */
export interface BackendPool {
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`. */
  url(path: string): string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startBackendPool(): Promise<BackendPool> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({ server });
  let accepted = 0;
  let turn = 0;
  let onceServed = false;
  wss.on('connection', (ws, req) => {
    accepted++;
    const welcome = (id: string) => JSON.stringify({ type: 'welcome', server_id: id });
    switch (new URL(req.url ?? '/', 'http://x').pathname) {
      case '/sticky':
        return ws.send(welcome(POOL_BACKENDS[0]));
      case '/round-robin':
        return ws.send(welcome(POOL_BACKENDS[turn++ % POOL_BACKENDS.length]!));
      case '/text':
        return ws.send(`served by ${POOL_BACKENDS[0]}`);
      case '/no-id':
        return ws.send(JSON.stringify({ type: 'welcome' }));
      case '/on-request':
        return ws.once('message', () => ws.send(welcome(POOL_BACKENDS[0])));
      case '/once':
        if (onceServed) return ws.close(1013, 'try again later');
        onceServed = true;
        return ws.send(welcome(POOL_BACKENDS[0]));
      case '/mute':
        return;
      default:
        ws.close(4004, 'unknown path');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    connections: () => accepted,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
