import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres } from '@wsmon/testing';
import { startEmbeddedPostgres } from './embedded-postgres';

/** The two databases the control plane runs on: PostgreSQL 15 and the embedded PGlite. */
export type Backend = 'postgres' | 'embedded';
export const BACKENDS = ['postgres', 'embedded'] as const;

export interface TestDatabase {
  readonly url: string;
  /** Stops the server and removes what it wrote. */
  close(): Promise<void>;
}

/**
 * A throwaway database of the backend: a database of a throwaway PostgreSQL cluster, or a PGlite in a
 * temporary directory (`name` names the directory).
 */
export async function openTestDatabase(backend: Backend, name: string): Promise<TestDatabase> {
  if (backend === 'postgres') {
    const pg = await startTestPostgres();
    return { url: await pg.createDatabase(), close: () => pg.stop() };
  }
  const dataDir = await mkdtemp(join(tmpdir(), `wsmon-${name}-`));
  const embedded = await startEmbeddedPostgres({ dataDir });
  return {
    url: embedded.url,
    close: async () => {
      await embedded.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
