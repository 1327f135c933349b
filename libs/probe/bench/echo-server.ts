import { WebSocketServer, type RawData, type WebSocket } from 'ws';

export interface EchoServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A plain `ws` echo server on 127.0.0.1 (an ephemeral port): every message is sent back as it came.
 * The close handshake is answered by `ws` itself, as any conforming endpoint does.
 */
export async function startEchoServer(): Promise<EchoServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => undefined);
    ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('echo server has no TCP address');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}
