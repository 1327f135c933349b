import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

const ENTRY = 'apps/control-plane/dist/main.js';

/** Builds the apps once per test process: e2e tests run what production runs. */
let built = false;
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'ignore' });
  built = true;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const newSecretKey = (): string => randomBytes(32).toString('base64');
export const newAdminKey = (): string => `admin-${randomBytes(24).toString('hex')}`;

export interface ControlPlaneProcess {
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly output: () => string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
}

/** Starts the built control plane as a real process and waits until /readyz answers 200. */
export async function startControlPlane(
  env: Record<string, string>,
  readyTimeoutMs = 60_000,
  ports?: { readonly http: number; readonly grpc: number },
): Promise<ControlPlaneProcess> {
  buildOnce();
  const httpPort = ports?.http ?? (await freePort());
  const grpcPort = ports?.grpc ?? (await freePort());
  const child: ChildProcess = spawn(process.execPath, ['--enable-source-maps', ENTRY], {
    env: {
      PATH: process.env.PATH ?? '',
      WSMON_HTTP_PORT: String(httpPort),
      WSMON_GRPC_PORT: String(grpcPort),
      // Tests start the agents they need themselves.
      WSMON_LOCAL_AGENT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const httpUrl = `http://127.0.0.1:${httpPort}`;

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the control plane exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${httpUrl}/readyz`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the control plane was not ready in ${readyTimeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    httpUrl,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface ApiResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
}

/** A tiny REST client: JSON in, JSON out, the API key as a bearer token. */
export function restClient(baseUrl: string, key?: string) {
  return async <T = any>(
    method: string,
    path: string,
    body?: unknown,
    as: string | undefined = key,
  ): Promise<ApiResponse<T>> => {
    const response = await fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: {
        ...(as === undefined ? {} : { authorization: `Bearer ${as}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
}

/** Runs the control plane until it exits by itself (a start that must fail); its exit code and output. */
export async function runControlPlaneToExit(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ code: number | null; output: string }> {
  buildOnce();
  const child = spawn(process.execPath, [ENTRY], {
    env: { PATH: process.env.PATH ?? '', WSMON_LOCAL_AGENT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, output };
}
