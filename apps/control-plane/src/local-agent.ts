import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { AGENT_NODE_FLAGS } from '@wsmon/runtime';
import { WebSocketServer } from 'ws';
import { parseCredential, secretMatches } from './auth/credentials';
import { NotFoundError } from './common/errors';
import { LocationsRepository } from './locations/locations.repository';
import { LocationsService } from './locations/locations.service';
import { TestsService } from './tests/tests.service';

export const LOCAL_LOCATION = 'local';
export const DEMO_ECHO_PATH = '/demo/echo';
const TOKEN_NAME = 'local agent (npm start)';

export interface LocalAgent {
  stop(): Promise<void>;
}

/**
 * The embedded setup's agent, so that a fresh clone monitors something with one command: the
 * location `local`, a token kept in the data directory (only its hash is in the database), a demo
 * echo endpoint on the control plane's own port with a test probing it, and the agent as a child
 * process built beside the control plane.
 */
export async function startLocalAgent(options: {
  readonly app: INestApplication;
  readonly dataDir: string;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly say: (line: string) => void;
}): Promise<LocalAgent | undefined> {
  const { app, dataDir, say } = options;
  const entry = join(__dirname, '..', '..', 'agent', 'dist', 'main.js');
  if (!existsSync(entry)) {
    say(`local agent: not started (${entry} is missing: run npm run build)`);
    return undefined;
  }
  serveDemoEcho(app.getHttpServer() as Server);
  const token = await localToken(app, join(dataDir, 'local-agent.token'));
  await ensureDemoTest(app, `${options.httpUrl.replace(/^http/, 'ws')}${DEMO_ECHO_PATH}`, say);

  // As the agent's image runs it (docker/Dockerfile.agent): flags that keep it small.
  const child: ChildProcess = spawn(process.execPath, [...AGENT_NODE_FLAGS, entry], {
    env: {
      ...process.env,
      WSMON_CONTROL_PLANE: options.grpcAddress,
      WSMON_TOKEN: token,
      WSMON_INSECURE: '1',
      WSMON_AGENT_DATA_DIR: join(dataDir, 'agent'),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  say(`local agent started (pid ${child.pid}) for location ${LOCAL_LOCATION}`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The kept token if it still authenticates; otherwise a new one (the location created if need be). */
async function localToken(app: INestApplication, file: string): Promise<string> {
  const locations = app.get(LocationsService);
  const kept = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  const parsed = kept ? parseCredential(kept, 'wsa') : undefined;
  if (kept && parsed) {
    const row = await app.get(LocationsRepository).findTokenByPrefix(parsed.prefix);
    if (row && !row.revokedAt && secretMatches(parsed.secret, row.secretHash)) return kept;
  }
  try {
    await locations.find(LOCAL_LOCATION);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    await locations.create({ name: LOCAL_LOCATION, kind: 'private' });
  }
  const { secret } = await locations.createToken(LOCAL_LOCATION, { name: TOKEN_NAME });
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}

async function ensureDemoTest(
  app: INestApplication,
  url: string,
  say: (line: string) => void,
): Promise<void> {
  const tests = app.get(TestsService);
  const name = 'demo: control plane echo';
  const page = await tests.list({ location: LOCAL_LOCATION, q: 'demo', page_size: '100' });
  const existing = page.items.find((t) => t.name === name);
  const body = {
    name,
    description:
      'Created by npm start: the local agent probes the echo endpoint of the control plane itself.',
    probe: {
      url,
      interpretation: 'round_trip_latency',
      ping_mode: 'message',
      send_message: 'ping',
      expect_message: 'ping',
    },
    schedule: { interval_s: 30 },
    locations: [LOCAL_LOCATION],
  };
  if (!existing) {
    await tests.create(body);
    say(`demo test "${name}" created: ${url} every 30 s from ${LOCAL_LOCATION}`);
  } else if (existing.probe.url !== url) {
    // The HTTP port changed since the test was made.
    await tests.patch(existing.id, { probe: { ...existing.probe, url } });
  }
}

/** A WebSocket echo on the control plane's HTTP port, for the demo test. */
function serveDemoEcho(server: Server): void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  server.on('upgrade', (request, socket, head) => {
    if (request.url !== DEMO_ECHO_PATH) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });
  server.once('close', () => wss.close());
}
