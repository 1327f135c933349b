import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

/** How a {@link JsonRpcNode} connection behaves: the `mode` query parameter. */
export const JSON_RPC_NODE_MODES = [
  'healthy',
  'stale',
  'stuck',
  'silent',
  'mute',
  'no-subscriptions',
] as const;
export type JsonRpcNodeMode = (typeof JSON_RPC_NODE_MODES)[number];

/** The chain head the node starts at. */
export const JSON_RPC_FIRST_BLOCK = 0x1000;

/**
 * An imitation of an Ethereum node's WebSocket JSON-RPC on 127.0.0.1: `eth_subscribe` with `newHeads`,
 * `eth_unsubscribe`, `eth_blockNumber`, `eth_chainId`, `eth_getBlockByNumber("latest", false)`; any
 * other method gets error -32601 as geth answers it.
 *
 * `?mode=` (default `healthy`): `healthy` sends a new head every `interval_ms` (default 30) with an
 * increasing block number and the current time; `stale` sends heads stamped an hour ago; `stuck` repeats
 * the same block number; `silent` confirms the subscription but never notifies; `mute` answers nothing;
 * `no-subscriptions` refuses `eth_subscribe` with -32601 (`notifications not supported`, as over HTTP).
 */
export interface JsonRpcNode {
  readonly port: number;
  /** `ws://127.0.0.1:<port>/?mode=<mode>` (plus `extra` query text). */
  url(mode?: JsonRpcNodeMode, extra?: string): string;
  /** Methods received, in order, over every connection. */
  readonly requests: readonly string[];
  /** Subscription ids unsubscribed, in order. */
  readonly unsubscribed: readonly string[];
  close(): Promise<void>;
}

interface Request {
  readonly id?: unknown;
  readonly method?: unknown;
  readonly params?: unknown;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** A text frame's content, whichever form ws hands it over in. */
function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return (Buffer.isBuffer(data) ? data : Buffer.from(new Uint8Array(data))).toString('utf8');
}

export async function startJsonRpcNode(): Promise<JsonRpcNode> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({ server });
  const requests: string[] = [];
  const unsubscribed: string[] = [];
  let nextSubscription = 1;

  wss.on('connection', (ws: WebSocket, req) => {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const mode = (query.get('mode') ?? 'healthy') as JsonRpcNodeMode;
    const intervalMs = Number(query.get('interval_ms') ?? 30);
    const timers = new Map<string, NodeJS.Timeout>();
    let block = JSON_RPC_FIRST_BLOCK;
    const head = () => ({
      number: hex(block),
      hash: `0x${block.toString(16).padStart(64, '0')}`,
      parentHash: `0x${(block - 1).toString(16).padStart(64, '0')}`,
      timestamp: hex(Math.floor(Date.now() / 1000) - (mode === 'stale' ? 3600 : 0)),
    });
    const answer = (id: unknown, body: object) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
    const notFound = (id: unknown, what: string) => answer(id, { error: { code: -32601, message: what } });

    ws.on('message', (data: RawData) => {
      let request: Request;
      try {
        request = JSON.parse(rawText(data)) as Request;
      } catch {
        answer(null, { error: { code: -32700, message: 'parse error' } });
        return;
      }
      const method = typeof request.method === 'string' ? request.method : '';
      requests.push(method);
      if (mode === 'mute') return;
      const params = Array.isArray(request.params) ? (request.params as unknown[]) : [];
      switch (method) {
        case 'eth_chainId':
          return answer(request.id, { result: '0x1' });
        case 'eth_blockNumber':
          return answer(request.id, { result: hex(block) });
        case 'eth_getBlockByNumber':
          return answer(request.id, { result: head() });
        case 'eth_subscribe': {
          if (mode === 'no-subscriptions') return notFound(request.id, 'notifications not supported');
          if (params[0] !== 'newHeads') return notFound(request.id, `no "${String(params[0])}" subscription`);
          const subscription = hex(0xabc000 + nextSubscription++);
          answer(request.id, { result: subscription });
          if (mode === 'silent') return;
          const timer = setInterval(() => {
            if (mode !== 'stuck') block++;
            ws.send(
              JSON.stringify({
                jsonrpc: '2.0',
                method: 'eth_subscription',
                params: { subscription, result: head() },
              }),
            );
          }, intervalMs);
          timers.set(subscription, timer);
          return;
        }
        case 'eth_unsubscribe': {
          const subscription = String(params[0]);
          unsubscribed.push(subscription);
          clearInterval(timers.get(subscription));
          const existed = timers.delete(subscription);
          return answer(request.id, { result: existed || mode === 'silent' });
        }
        default:
          return notFound(request.id, `the method ${method} does not exist/is not available`);
      }
    });
    ws.on('close', () => {
      for (const timer of timers.values()) clearInterval(timer);
      timers.clear();
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (mode = 'healthy', extra = '') => `ws://127.0.0.1:${port}/?mode=${mode}${extra ? `&${extra}` : ''}`,
    requests,
    unsubscribed,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
