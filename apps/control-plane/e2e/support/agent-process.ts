import { type ChildProcess, spawn } from 'node:child_process';
import { buildOnce, freePort } from './control-plane-process';

const ENTRY = 'apps/agent/dist/main.js';

export interface AgentProcess {
  readonly dataDir: string;
  readonly httpUrl: string;
  readonly output: () => string;
  /** Resolves once the output (since the start) matches, a count of times. */
  waitFor(pattern: RegExp, timeoutMs?: number, times?: number): Promise<void>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
}

/** Starts the built agent as a real process, as an operator would, with its configuration in the environment. */
export async function startAgent(options: {
  readonly controlPlane: string;
  readonly token: string;
  readonly dataDir: string;
  readonly env?: Record<string, string>;
}): Promise<AgentProcess> {
  buildOnce();
  const httpPort = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--enable-source-maps', ENTRY], {
    env: {
      PATH: process.env.PATH ?? '',
      WSMON_CONTROL_PLANE: options.controlPlane,
      WSMON_TOKEN: options.token,
      WSMON_INSECURE: '1',
      WSMON_AGENT_DATA_DIR: options.dataDir,
      WSMON_AGENT_HTTP_PORT: String(httpPort),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    listeners.forEach((l) => l());
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
      listeners.forEach((l) => l());
    }),
  );
  const count = (pattern: RegExp) =>
    output.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`))?.length ?? 0;

  return {
    dataDir: options.dataDir,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    output: () => output,
    waitFor: (pattern, timeoutMs = 20_000, times = 1) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (count(pattern) >= times) {
            cleanup();
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`the agent exited before ${pattern} appeared:\n${output}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${pattern} did not appear ${times} time(s) within ${timeoutMs} ms:\n${output}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
