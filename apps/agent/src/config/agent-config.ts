import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseEnvironment } from '@wsmon/contracts';
import { z } from 'zod';

/** The agent's configuration: environment and flags, validated once at start. */
export interface AgentConfig {
  /** host:port of the control plane's gRPC endpoint. */
  readonly controlPlane: string;
  readonly token: string;
  /** Plaintext gRPC: only when explicitly allowed (local development). */
  readonly insecure: boolean;
  readonly tls: {
    readonly caPem: string | undefined;
    readonly serverName: string | undefined;
    readonly clientCertPem: string | undefined;
    readonly clientKeyPem: string | undefined;
  };
  readonly dataDir: string;
  readonly httpHost: string;
  readonly httpPort: number;
  /** Probes in flight at most; heartbeats report the free slots. */
  readonly concurrency: number;
  /** Bound of the result spool on disk: past it the oldest unacknowledged results are dropped. */
  readonly spoolMaxBytes: number;
  /** The `/probe` modules file (JSON); undefined: only the built-in `ws_handshake`. */
  readonly probeModulesPath: string | undefined;
  readonly debug: boolean;
}

const MIB = 1024 * 1024;
/** 256 MiB hold over a hundred thousand results (1 to 2 kB each): hours of an outage for a busy agent. */
export const DEFAULT_SPOOL_MAX_BYTES = 256 * MIB;

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

const envSchema = z
  .object({
    WSMON_CONTROL_PLANE: z.string().refine((v) => {
      const port = Number(HOST_PORT.exec(v)?.[2] ?? 0);
      return port >= 1 && port <= 65_535;
    }, 'must be host:port with a port from 1 to 65535, such as control.example.com:443'),
    WSMON_TOKEN: z
      .string()
      .refine((v) => v.length >= 20, 'must be the location token the control plane issued (wsa_…)'),
    WSMON_INSECURE: flag.default(false),
    WSMON_TLS_CA: z.string().min(1).optional(),
    WSMON_TLS_SERVER_NAME: z.string().min(1).optional(),
    WSMON_TLS_CERT: z.string().min(1).optional(),
    WSMON_TLS_KEY: z.string().min(1).optional(),
    WSMON_AGENT_DATA_DIR: z.string().min(1).default('.wsmon-agent'),
    // The /probe endpoint runs probes on request: it listens on loopback unless told otherwise.
    WSMON_AGENT_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
    WSMON_AGENT_HTTP_PORT: z.coerce.number().int().min(0).max(65_535).default(9095),
    WSMON_AGENT_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(50),
    WSMON_AGENT_SPOOL_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(MIB)
      .max(1024 * 1024 * MIB)
      .default(DEFAULT_SPOOL_MAX_BYTES),
    WSMON_AGENT_PROBE_MODULES: z.string().min(1).optional(),
    WSMON_DEBUG: flag.default(false),
  })
  .superRefine((env, ctx) => {
    if ((env.WSMON_TLS_CERT === undefined) !== (env.WSMON_TLS_KEY === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.WSMON_TLS_CERT === undefined ? 'WSMON_TLS_CERT' : 'WSMON_TLS_KEY'],
        message: 'a client certificate needs both WSMON_TLS_CERT and WSMON_TLS_KEY',
      });
    }
    if (env.WSMON_INSECURE && (env.WSMON_TLS_CA || env.WSMON_TLS_CERT)) {
      ctx.addIssue({
        code: 'custom',
        path: ['WSMON_INSECURE'],
        message: 'conflicts with the TLS settings given',
      });
    }
  });

/** The token is a credential; it is never echoed in an error. */
const SENSITIVE = new Set(['WSMON_TOKEN']);

/**
 * Flags override the environment: `--control-plane`, `--data-dir`, `--http-host`, `--http-port`,
 * `--concurrency`, `--probe-modules`, `--insecure`, `--debug`.
 */
const FLAG_TO_ENV: Record<string, string> = {
  '--control-plane': 'WSMON_CONTROL_PLANE',
  '--data-dir': 'WSMON_AGENT_DATA_DIR',
  '--http-host': 'WSMON_AGENT_HTTP_HOST',
  '--http-port': 'WSMON_AGENT_HTTP_PORT',
  '--concurrency': 'WSMON_AGENT_CONCURRENCY',
  '--probe-modules': 'WSMON_AGENT_PROBE_MODULES',
};
const SWITCH_TO_ENV: Record<string, string> = { '--insecure': 'WSMON_INSECURE', '--debug': 'WSMON_DEBUG' };

export class AgentUsageError extends Error {}

/** Reads the environment and flags; throws EnvironmentError or AgentUsageError with every problem. */
export function loadAgentConfig(
  env: NodeJS.ProcessEnv,
  argv: readonly string[],
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): AgentConfig {
  const merged: NodeJS.ProcessEnv = { ...env };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (SWITCH_TO_ENV[name]) {
      merged[SWITCH_TO_ENV[name]] = inline ?? '1';
    } else if (FLAG_TO_ENV[name]) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new AgentUsageError(`${name} needs a value`);
      merged[FLAG_TO_ENV[name]] = value;
    } else {
      // The token is never a flag: command lines are visible to every user of the machine.
      const hint = name === '--token' ? ' (set WSMON_TOKEN in the environment instead)' : '';
      throw new AgentUsageError(`unknown option ${name}${hint}`);
    }
  }
  const v = parseEnvironment(envSchema, merged, SENSITIVE);
  const read = (variable: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return readFile(path);
    } catch (error) {
      throw new AgentUsageError(
        `${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  return {
    controlPlane: v.WSMON_CONTROL_PLANE,
    token: v.WSMON_TOKEN,
    insecure: v.WSMON_INSECURE,
    tls: {
      caPem: read('WSMON_TLS_CA', v.WSMON_TLS_CA),
      serverName: v.WSMON_TLS_SERVER_NAME,
      clientCertPem: read('WSMON_TLS_CERT', v.WSMON_TLS_CERT),
      clientKeyPem: read('WSMON_TLS_KEY', v.WSMON_TLS_KEY),
    },
    dataDir: isAbsolute(v.WSMON_AGENT_DATA_DIR) ? v.WSMON_AGENT_DATA_DIR : resolve(v.WSMON_AGENT_DATA_DIR),
    httpHost: v.WSMON_AGENT_HTTP_HOST,
    httpPort: v.WSMON_AGENT_HTTP_PORT,
    concurrency: v.WSMON_AGENT_CONCURRENCY,
    spoolMaxBytes: v.WSMON_AGENT_SPOOL_MAX_BYTES,
    probeModulesPath:
      v.WSMON_AGENT_PROBE_MODULES === undefined || isAbsolute(v.WSMON_AGENT_PROBE_MODULES)
        ? v.WSMON_AGENT_PROBE_MODULES
        : resolve(v.WSMON_AGENT_PROBE_MODULES),
    debug: v.WSMON_DEBUG,
  };
}
