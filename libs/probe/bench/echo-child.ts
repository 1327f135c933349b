/**
 * Entry point of the echo server's own process (forked by probe.bench.ts with the parent's tsx loader).
 * It reports its port over IPC, and exits when the parent disconnects, asks it to, or after a hard cap.
 */
import { startEchoServer } from './echo-server';

export interface EchoChildReady {
  readonly type: 'ready';
  readonly port: number;
}

/** Whatever happens to the parent, this process does not outlive this. */
const MAX_LIFETIME_MS = 10 * 60_000;

async function main(): Promise<void> {
  if (!process.send) throw new Error('echo-child.ts must be started with an IPC channel (fork)');
  const server = await startEchoServer();
  const stop = () => {
    void server.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('disconnect', stop);
  process.on('message', (message) => {
    if (message === 'stop') stop();
  });
  setTimeout(stop, MAX_LIFETIME_MS).unref();
  const ready: EchoChildReady = { type: 'ready', port: server.port };
  process.send(ready);
}

main().catch((error: unknown) => {
  console.error('echo child failed:', error);
  process.exit(1);
});
