import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, type AppConfig } from '../config/app-config';

/**
 * The key that encrypts secrets. Given by WSMON_SECRET_KEY, or, with the embedded database only,
 * generated once and kept (0600) beside the data: several replicas on one PostgreSQL must all
 * be given the same key, so it cannot be generated per process there.
 */
export async function resolveSecretKey(config: AppConfig): Promise<Buffer> {
  if (config.secretKey) return config.secretKey;
  if (config.databaseUrl) {
    throw new ConfigError(
      'WSMON_SECRET_KEY: is required with DATABASE_URL (32 bytes, base64: openssl rand -base64 32)',
    );
  }
  const file = join(config.dataDir, 'secret.key');
  try {
    const key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
    if (key.length === 32) return key;
    throw new ConfigError(`${file}: does not hold a 32-byte base64 key`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}
