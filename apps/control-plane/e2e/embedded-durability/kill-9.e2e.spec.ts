import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { spawnAckingChild, type AckingChild } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedPostgresLockedError, startEmbeddedPostgres } from '../../src/database/embedded-postgres';

const WRITER = 'apps/control-plane/e2e/embedded-durability/writer.runner.ts';
const ROUNDS = 3;

let scratch: string;
/** An initialised data directory (initdb in WASM takes seconds), copied for each test. */
let template: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'wsmon-kill9-'));
  template = join(scratch, 'template');
  await (await startEmbeddedPostgres({ dataDir: template })).close();
}, 60_000);

function copyOfTemplate(name: string): string {
  const dataDir = join(scratch, name);
  cpSync(template, dataDir, { recursive: true });
  return dataDir;
}

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

/** The writer child: `READY <pid>`, then `ACK <n>` after each COMMIT returned. */
function startWriter(input: {
  dataDir: string;
  asyncCommit?: boolean;
  checkpointEvery?: number;
}): AckingChild {
  return spawnAckingChild(WRITER, input, children);
}

async function killMidStream(writer: AckingChild, afterAcks: number): Promise<number[]> {
  await writer.waitForAcks(afterAcks);
  writer.child.kill('SIGKILL'); // while it goes on committing: a transaction is in flight
  const { signal, stderr } = await writer.closed;
  expect(signal, stderr).toBe('SIGKILL');
  return writer.acks;
}

/** Every row in the table, opened the way the control plane opens it after a crash. */
async function rowsAfterRestart(dataDir: string): Promise<number[]> {
  const embedded = await startEmbeddedPostgres({ dataDir });
  try {
    const client = new Client({ connectionString: embedded.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>('SELECT n FROM acked ORDER BY n');
      return rows.map((row) => row.n);
    } finally {
      await client.end();
    }
  } finally {
    await embedded.close();
  }
}

describe('the embedded PostgreSQL under kill -9', () => {
  it(`keeps every acknowledged commit, ${ROUNDS} crashes in a row on one data directory`, async () => {
    const dataDir = copyOfTemplate('durable');
    let acknowledged: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const writer = startWriter({ dataDir, checkpointEvery: 40 });
      const pid = await writer.ready;
      if (round === 1) {
        // A second process on the same directory is refused, naming the owner.
        const error = await startEmbeddedPostgres({ dataDir }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EmbeddedPostgresLockedError);
        expect((error as EmbeddedPostgresLockedError).ownerPid).toBe(pid);
      }
      const acks = await killMidStream(writer, 25 + Math.floor(Math.random() * 40));
      acknowledged = [...acknowledged, ...acks];

      // What the killed process left behind: its lock, PGlite's postmaster.pid, the socket.
      expect(JSON.parse(readFileSync(join(dataDir, 'embedded-postgres.lock'), 'utf8'))).toMatchObject({
        pid,
      });
      expect(existsSync(join(dataDir, 'pgdata', 'postmaster.pid'))).toBe(true);
      expect(existsSync(join(dataDir, '.s.PGSQL.5432'))).toBe(true);

      const rows = await rowsAfterRestart(dataDir);
      const missing = acknowledged.filter((n) => !rows.includes(n));
      expect(missing, `round ${round}: acknowledged rows lost`).toEqual([]);
      // Commits are sequential: what survived is a prefix, with at most the unacknowledged tail beyond.
      expect(rows).toEqual(rows.map((_, i) => i + 1));
      expect(rows.length).toBeGreaterThanOrEqual(Math.max(...acknowledged));
    }
  }, 90_000);

  it('control: with asynchronous commit the same test does see acknowledged rows lost', async () => {
    const dataDir = copyOfTemplate('async');
    const writer = startWriter({ dataDir, asyncCommit: true });
    await writer.ready;
    const acks = await killMidStream(writer, 25);
    const rows = await rowsAfterRestart(dataDir);
    expect(acks.filter((n) => !rows.includes(n)).length).toBeGreaterThan(0);
  }, 60_000);
});
