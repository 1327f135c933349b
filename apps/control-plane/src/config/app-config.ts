import { isAbsolute, resolve } from 'node:path';
import { EnvironmentError, parseEnvironment } from '@wsmon/contracts';
import { z } from 'zod';

/** The control plane's configuration: the environment, validated once at start. */
export interface AppConfig {
  /** A real PostgreSQL; undefined means the embedded one in `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly grpcHost: string;
  readonly grpcPort: number;
  /** Bootstrap admin key, taken instead of generating one on an empty database. */
  readonly adminKey: string | undefined;
  /** 32-byte key that encrypts secrets at rest; generated and kept in `dataDir` when embedded. */
  readonly secretKey: Buffer | undefined;
  /** Agent streams: milliseconds between heartbeats, both ways (Welcome.heartbeat_interval_ms). */
  readonly agentHeartbeatMs: number;
  /** How long a disconnected agent keeps its tests before they move to its location's other agents. */
  readonly agentGraceMs: number;
  /** `npm start` in the embedded setup also runs one agent for the location `local`; 0 turns it off. */
  readonly localAgent: boolean;
  /** Days a raw result is kept at least; older days are dropped whole (the rollups are kept longer). */
  readonly resultsRetentionDays: number;
  /** When set, `/metrics` takes this bearer token; otherwise it is open, like `/healthz`. */
  readonly metricsToken: string | undefined;
  /** Milliseconds between alert evaluations (every replica tries; one at a time evaluates). */
  readonly alertEvaluationMs: number;
}

const port = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);

const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  WSMON_DATA_DIR: z.string().min(1).default('.wsmon'),
  WSMON_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  WSMON_HTTP_PORT: port(8080),
  WSMON_GRPC_HOST: z.string().min(1).default('127.0.0.1'),
  WSMON_GRPC_PORT: port(50051),
  WSMON_ADMIN_KEY: z
    .string()
    .min(24, 'must be at least 24 characters (it is an admin credential)')
    .optional(),
  WSMON_SECRET_KEY: z
    .string()
    .refine(
      (v) => Buffer.from(v, 'base64').length === 32,
      'must be 32 bytes, base64-encoded (openssl rand -base64 32)',
    )
    .optional(),
  WSMON_AGENT_HEARTBEAT_MS: z.coerce.number().int().min(1000).max(300_000).default(10_000),
  WSMON_AGENT_GRACE_MS: z.coerce.number().int().min(0).max(3_600_000).default(15_000),
  WSMON_LOCAL_AGENT: z.enum(['0', '1']).default('1'),
  WSMON_RESULTS_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  WSMON_ALERT_EVALUATION_MS: z.coerce.number().int().min(1000).max(300_000).default(10_000),
  WSMON_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters (it is a credential)').optional(),
});

/** Variables whose values are credentials (a URL may carry a password): never echoed. */
const SENSITIVE = new Set(['DATABASE_URL', 'WSMON_ADMIN_KEY', 'WSMON_SECRET_KEY']);
SENSITIVE.add('WSMON_METRICS_TOKEN');

/** Thrown with one line per bad variable (or a missing requirement); main.ts prints it and exits 2. */
export class ConfigError extends Error {}

export function loadAppConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  let v: z.output<typeof envSchema>;
  try {
    v = parseEnvironment(envSchema, env, SENSITIVE);
  } catch (error) {
    if (error instanceof EnvironmentError) throw new ConfigError(error.message);
    throw error;
  }

  return {
    databaseUrl: v.DATABASE_URL,
    dataDir: isAbsolute(v.WSMON_DATA_DIR) ? v.WSMON_DATA_DIR : resolve(v.WSMON_DATA_DIR),
    httpHost: v.WSMON_HTTP_HOST,
    httpPort: v.WSMON_HTTP_PORT,
    grpcHost: v.WSMON_GRPC_HOST,
    grpcPort: v.WSMON_GRPC_PORT,
    adminKey: v.WSMON_ADMIN_KEY,
    secretKey: v.WSMON_SECRET_KEY === undefined ? undefined : Buffer.from(v.WSMON_SECRET_KEY, 'base64'),
    agentHeartbeatMs: v.WSMON_AGENT_HEARTBEAT_MS,
    agentGraceMs: v.WSMON_AGENT_GRACE_MS,
    localAgent: v.WSMON_LOCAL_AGENT === '1',
    resultsRetentionDays: v.WSMON_RESULTS_RETENTION_DAYS,
    alertEvaluationMs: v.WSMON_ALERT_EVALUATION_MS,
    metricsToken: v.WSMON_METRICS_TOKEN,
  };
}

export const APP_CONFIG = Symbol('APP_CONFIG');
