import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type * as GraphqlModule from 'graphql';
import type { GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { SubscriptionServer } from 'subscriptions-transport-ws';
import { WebSocketServer } from 'ws';

/**
 * graphql-js refuses schemas built by another copy of itself, and graphql 16 ships two (CommonJS and
 * ESM). Both server libraries load the CommonJS one, so the schema is built with it too.
 */
const graphql = createRequire(import.meta.url)('graphql') as typeof GraphqlModule;

/** The token `connectionParams.token` must carry on the `/auth` paths. */
export const GRAPHQL_TOKEN = 'graphql-token-3e9a';

/**
 * A real GraphQL server on 127.0.0.1: a graphql-js schema served by the `graphql-ws` library
 * (graphql-transport-ws) and by `subscriptions-transport-ws` (the legacy protocol), on one port.
 *
 * Paths:
 * - `/graphql`: graphql-transport-ws, no auth.
 * - `/graphql/auth`: graphql-transport-ws; `connection_init` must carry `{"token": GRAPHQL_TOKEN}`,
 *   else the server closes with 4403 Forbidden.
 * - `/graphql/no-ack`: graphql-transport-ws whose `onConnect` never settles: no `connection_ack`.
 * - `/legacy`: subscriptions-transport-ws, keep-alives (`ka`) every 50 ms.
 * - `/legacy/auth`: as `/legacy`, and `connection_init` must carry the token, else `connection_error`.
 *
 * The schema: `Query.hello: String`; subscriptions `greetings(count = 3, interval_ms = 20): String`
 * (`"hello 1"` … then complete), `failing: String` (a result whose `errors` are set), `silent: String`
 * (never sends anything), `empty: String` (completes without a result).
 */
export interface GraphqlServer {
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`. */
  url(path: string): string;
  /** `connection_init` payloads received, in order (to check what the probe sent). */
  readonly initPayloads: readonly unknown[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function* greetings(count: number, intervalMs: number): AsyncGenerator<{ greetings: string }> {
  for (let i = 1; i <= count; i++) {
    await sleep(intervalMs);
    yield { greetings: `hello ${i}` };
  }
}

/** An iterator that yields nothing until it is returned: no timer, so nothing outlives the server. */
function silentIterator(): AsyncIterableIterator<never> {
  let stop: ((result: IteratorResult<never>) => void) | undefined;
  const iterator: AsyncIterableIterator<never> = {
    [Symbol.asyncIterator]: () => iterator,
    next: () =>
      new Promise<IteratorResult<never>>((resolve) => {
        stop = resolve;
      }),
    return: () => {
      stop?.({ done: true, value: undefined });
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return iterator;
}

async function* nothing(): AsyncGenerator<never> {}

export function graphqlTestSchema(): GraphQLSchema {
  const { GraphQLError, GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } =
    graphql;
  return new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: { hello: { type: GraphQLString, resolve: () => 'world' } },
    }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        greetings: {
          type: GraphQLString,
          args: {
            count: { type: new GraphQLNonNull(GraphQLInt), defaultValue: 3 },
            interval_ms: { type: new GraphQLNonNull(GraphQLInt), defaultValue: 20 },
          },
          subscribe: (_root, args: { count: number; interval_ms: number }) =>
            greetings(args.count, args.interval_ms),
        },
        failing: {
          type: GraphQLString,
          subscribe: () => greetings(1, 1),
          resolve: () => {
            throw new GraphQLError('the resolver failed');
          },
        },
        silent: { type: GraphQLString, subscribe: () => silentIterator() },
        empty: { type: GraphQLString, subscribe: () => nothing() },
      },
    }),
  });
}

function hasToken(params: unknown): boolean {
  return (params as { token?: unknown } | null | undefined)?.token === GRAPHQL_TOKEN;
}

export async function startGraphqlServer(): Promise<GraphqlServer> {
  const schema = graphqlTestSchema();
  const initPayloads: unknown[] = [];
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const modern = (mode: 'open' | 'auth' | 'no-ack') => {
    const wss = new WebSocketServer({ noServer: true });
    useServer(
      {
        schema,
        onConnect: (ctx) => {
          initPayloads.push(ctx.connectionParams);
          if (mode === 'no-ack') return new Promise<boolean>(() => undefined);
          return mode === 'open' || hasToken(ctx.connectionParams);
        },
      },
      wss,
    );
    return wss;
  };
  const legacy = (auth: boolean) => {
    const wss = new WebSocketServer({ noServer: true });
    SubscriptionServer.create(
      {
        schema,
        execute: graphql.execute,
        subscribe: graphql.subscribe,
        keepAlive: 50,
        onConnect: (params: unknown) => {
          initPayloads.push(params);
          if (auth && !hasToken(params)) throw new Error('the token is missing or wrong');
          return true;
        },
      },
      wss,
    );
    return wss;
  };
  const servers: Record<string, WebSocketServer> = {
    '/graphql': modern('open'),
    '/graphql/auth': modern('auth'),
    '/graphql/no-ack': modern('no-ack'),
    '/legacy': legacy(false),
    '/legacy/auth': legacy(true),
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const wss = servers[new URL(req.url ?? '/', 'http://x').pathname];
    if (!wss) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    initPayloads,
    close: async () => {
      for (const wss of Object.values(servers)) {
        for (const client of wss.clients) client.terminate();
        wss.close();
      }
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
