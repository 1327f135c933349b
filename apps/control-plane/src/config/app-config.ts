import { isAbsolute, resolve } from 'node:path';
import { parseInput } from '@wsmon/contracts';
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
});

/** Variables whose values are credentials (a URL may carry a password): never echoed. */
const SENSITIVE = new Set(['DATABASE_URL', 'WSMON_ADMIN_KEY', 'WSMON_SECRET_KEY']);

/** Thrown with one line per bad variable; main.ts prints it and exits. */
export class ConfigError extends Error {}

export function loadAppConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  // Empty variables count as unset: `FOO= cmd` is a common way to clear one.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = parseInput(envSchema, present);
  if (!parsed.ok) {
    throw new ConfigError(
      `invalid environment:\n${parsed.errors
        .map((e) => {
          // The raw text as set: a coerced value (NaN for "eighty") would say less.
          const raw = present[e.path];
          const shown = raw === undefined || SENSITIVE.has(e.path) ? '' : ` (got ${JSON.stringify(raw)})`;
          return `  ${e.message}${shown}`;
        })
        .join('\n')}`,
    );
  }
  const v = parsed.value;
  return {
    databaseUrl: v.DATABASE_URL,
    dataDir: isAbsolute(v.WSMON_DATA_DIR) ? v.WSMON_DATA_DIR : resolve(v.WSMON_DATA_DIR),
    httpHost: v.WSMON_HTTP_HOST,
    httpPort: v.WSMON_HTTP_PORT,
    grpcHost: v.WSMON_GRPC_HOST,
    grpcPort: v.WSMON_GRPC_PORT,
    adminKey: v.WSMON_ADMIN_KEY,
    secretKey: v.WSMON_SECRET_KEY === undefined ? undefined : Buffer.from(v.WSMON_SECRET_KEY, 'base64'),
  };
}

export const APP_CONFIG = Symbol('APP_CONFIG');
