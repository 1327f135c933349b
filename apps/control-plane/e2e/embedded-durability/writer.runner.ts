/**
 * Child process of the kill -9 durability test: opens the embedded PostgreSQL in the given directory and
 * commits rows one by one, printing `ACK <n>` once the COMMIT of row n has returned, until it is killed.
 */
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';

interface WriterInput {
  readonly dataDir: string;
  /** Commit with synchronous_commit=off: the control run, which must lose acknowledged rows. */
  readonly asyncCommit?: boolean;
  /** Run CHECKPOINT after every this many commits (0: never). */
  readonly checkpointEvery?: number;
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as WriterInput;
  const embedded = await startEmbeddedPostgres({ dataDir: input.dataDir });
  const client = new Client({ connectionString: embedded.url });
  await client.connect();
  await client.query('CREATE TABLE IF NOT EXISTS acked (n integer PRIMARY KEY, payload text NOT NULL)');
  if (input.asyncCommit) await client.query('SET synchronous_commit = off');
  const { rows } = await client.query<{ next: number }>('SELECT coalesce(max(n), 0) + 1 AS next FROM acked');
  process.stdout.write(`READY ${process.pid}\n`);
  for (let n = rows[0]!.next; ; n++) {
    await client.query('BEGIN');
    // Payloads of up to 6 kB: some commits span several WAL pages.
    await client.query("INSERT INTO acked (n, payload) VALUES ($1, repeat('x', $2))", [
      n,
      ((n * 7919) % 6000) + 1,
    ]);
    await client.query('COMMIT');
    process.stdout.write(`ACK ${n}\n`);
    if (input.checkpointEvery && n % input.checkpointEvery === 0) await client.query('CHECKPOINT');
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
