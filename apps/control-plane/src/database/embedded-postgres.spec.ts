import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  EmbeddedPostgresLockedError,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from './embedded-postgres';

const LOCK_FILE = 'embedded-postgres.lock';

let scratch: string;
/** A data directory initialised once (initdb in WASM takes seconds) and copied for each test. */
let template: string;
/** One instance for the tests that need no directory of their own (each uses its own tables). */
let shared: EmbeddedPostgres;
const open: EmbeddedPostgres[] = [];
const clients: Client[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'wsmon-embedded-'));
  template = join(scratch, 'template');
  // What a first start killed during initialisation leaves: discarded by the next start.
  mkdirSync(join(template, 'pgdata.initialising'), { recursive: true });
  writeFileSync(join(template, 'pgdata.initialising', 'PG_VERSION'), '18\n');
  const embedded = await startEmbeddedPostgres({ dataDir: template });
  await embedded.close();
  shared = await startEmbeddedPostgres({ dataDir: copyOfTemplate('shared') });
}, 60_000);

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.end().catch(() => undefined)));
  await Promise.all(open.splice(0).map((embedded) => embedded.close()));
});

afterAll(async () => {
  await shared?.close();
  rmSync(scratch, { recursive: true, force: true });
});

let copies = 0;
function copyOfTemplate(name = `db-${++copies}`): string {
  const dir = join(scratch, name);
  cpSync(template, dir, { recursive: true });
  return dir;
}

async function start(options: Parameters<typeof startEmbeddedPostgres>[0]): Promise<EmbeddedPostgres> {
  const embedded = await startEmbeddedPostgres(options);
  open.push(embedded);
  return embedded;
}

async function client(url: string): Promise<Client> {
  const c = new Client({ connectionString: url });
  c.on('error', () => undefined);
  clients.push(c);
  await c.connect();
  return c;
}

async function scalar<T>(c: Client, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await c.query<{ value: T }>(sql, params);
  return rows[0]!.value;
}

describe('startEmbeddedPostgres', () => {
  it('initialises a fresh directory: PostgreSQL 18, durable settings, a socket only this user can use', async () => {
    const embedded = shared;
    expect(embedded.serverVersion).toMatch(/^18\.\d+$/);
    expect(statSync(join(embedded.dataDir, 'pgdata')).mode & 0o777).toBe(0o700);
    expect(existsSync(join(embedded.dataDir, 'pgdata', 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(embedded.dataDir, 'pgdata.initialising'))).toBe(false);

    const url = new URL(embedded.url);
    expect(url.searchParams.get('host')).toBe(embedded.dataDir);
    expect(statSync(join(embedded.dataDir, '.s.PGSQL.5432')).mode & 0o777).toBe(0o600);
    const lock = JSON.parse(readFileSync(join(embedded.dataDir, LOCK_FILE), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(process.pid);

    const c = await client(embedded.url);
    expect(await scalar(c, "SELECT current_setting('server_version') AS value")).toBe(embedded.serverVersion);
    const settings = await c.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings
        WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method') ORDER BY name`,
    );
    expect(settings.rows).toEqual([
      { name: 'fsync', setting: 'on' },
      { name: 'full_page_writes', setting: 'on' },
      { name: 'synchronous_commit', setting: 'on' },
      { name: 'wal_sync_method', setting: 'open_datasync' },
    ]);
  });

  it('serves TypeORM with a pool of one: connect, query, transactions committed and rolled back', async () => {
    const embedded = shared;
    const dataSource = new DataSource({ type: 'postgres', url: embedded.url, extra: { max: 1 } });
    await dataSource.initialize();
    try {
      const [{ version }] = await dataSource.query<[{ version: string }]>('SELECT version() AS version');
      expect(version).toContain('PostgreSQL 18');

      await dataSource.transaction(async (manager) => {
        await manager.query('CREATE TABLE item (id integer PRIMARY KEY, name text NOT NULL)');
        await manager.query('INSERT INTO item VALUES ($1, $2)', [1, 'kept']);
      });
      await expect(
        dataSource.transaction(async (manager) => {
          await manager.query('INSERT INTO item VALUES ($1, $2)', [2, 'undone']);
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      // A failed statement inside a transaction, then a rollback.
      await expect(
        dataSource.transaction(async (manager) => {
          await manager.query('INSERT INTO item VALUES ($1, $2)', [3, 'undone too']);
          await manager.query('INSERT INTO item VALUES ($1, $2)', [1, 'duplicate']);
        }),
      ).rejects.toThrow(/duplicate key/);
      // Concurrent work queues on the one connection.
      const names = await Promise.all(
        [4, 5, 6].map(async (id) => {
          await dataSource.query('INSERT INTO item VALUES ($1, $2)', [id, `n${id}`]);
          return id;
        }),
      );
      expect(names).toEqual([4, 5, 6]);
      const rows = await dataSource.query<unknown[]>('SELECT id, name FROM item ORDER BY id');
      expect(rows).toEqual([
        { id: 1, name: 'kept' },
        { id: 4, name: 'n4' },
        { id: 5, name: 'n5' },
        { id: 6, name: 'n6' },
      ]);
    } finally {
      await dataSource.destroy();
    }
  });

  it('keeps data across a clean close and a restart', async () => {
    const dataDir = copyOfTemplate();
    const first = await startEmbeddedPostgres({ dataDir });
    const c = new Client({ connectionString: first.url });
    await c.connect();
    await c.query('CREATE TABLE kept (n integer)');
    await c.query('INSERT INTO kept SELECT generate_series(1, 1000)');
    await c.end();
    await first.close();
    await first.close(); // idempotent
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    expect(existsSync(join(dataDir, '.s.PGSQL.5432'))).toBe(false);
    expect(existsSync(join(dataDir, 'pgdata', 'postmaster.pid'))).toBe(false);

    const second = await start({ dataDir });
    expect(await scalar(await client(second.url), 'SELECT count(*)::int AS value FROM kept')).toBe(1000);
  });

  it('admits one connection at a time: the next waits until the previous one closes', async () => {
    const embedded = shared;
    const first = await client(embedded.url);
    await first.query('CREATE TABLE seen (n integer)');
    await first.query('BEGIN');
    await first.query('INSERT INTO seen VALUES (1)');

    let secondConnected = false;
    const second = new Client({ connectionString: embedded.url });
    clients.push(second);
    const connecting = second.connect().then(() => (secondConnected = true));
    await new Promise((done) => setTimeout(done, 300));
    expect(secondConnected).toBe(false);

    await first.query('COMMIT');
    await first.end();
    await connecting;
    expect(await scalar(second, 'SELECT count(*)::int AS value FROM seen')).toBe(1);
  });

  it('hands the connection on at once when a pool of one replaces it (no refusal race)', async () => {
    const embedded = shared;
    // Idle connections are closed after 5 ms, so most queries open a new connection while the old one closes.
    const pool = new Pool({
      connectionString: embedded.url,
      max: 1,
      idleTimeoutMillis: 5,
    });
    pool.on('error', () => undefined);
    try {
      for (let i = 0; i < 40; i++) {
        expect(await pool.query('SELECT $1::int AS i', [i])).toMatchObject({ rows: [{ i }] });
        await new Promise((done) => setTimeout(done, 4 + (i % 4)));
      }
    } finally {
      await pool.end();
    }
  });

  it('resets the session when a connection ends abruptly: no open transaction, no leftover settings', async () => {
    const embedded = shared;
    const setup = await client(embedded.url);
    await setup.query('CREATE TABLE reset_t (n integer)');
    await setup.end();

    const dropped = await client(embedded.url);
    await dropped.query("SET statement_timeout = '4s'");
    await dropped.query('BEGIN');
    await dropped.query('INSERT INTO reset_t VALUES (1)');
    (dropped as unknown as { connection: { stream: Socket } }).connection.stream.destroy();

    const next = await client(embedded.url);
    expect(await scalar(next, "SELECT current_setting('statement_timeout') AS value")).toBe('0');
    expect(await scalar(next, 'SELECT count(*)::int AS value FROM reset_t')).toBe(0);
    // Not inside the dropped transaction: this one commits on its own.
    await next.query('INSERT INTO reset_t VALUES (2)');
    await next.end();
    const last = await client(embedded.url);
    expect(await scalar(last, 'SELECT count(*)::int AS value FROM reset_t')).toBe(1);
  });

  it('does not commit an extended-protocol batch cut off before its Sync', async () => {
    const embedded = shared;
    const setup = await client(embedded.url);
    await setup.query('CREATE TABLE batch_t (n integer)');
    await setup.end();

    // Parse, Bind, Execute of an INSERT, then the connection dies before Sync.
    const socket = netConnect(join(embedded.dataDir, '.s.PGSQL.5432'));
    const received = collect(socket);
    await new Promise((done) => socket.once('connect', done));
    socket.write(startupPacket());
    await received.waitFor('Z');
    socket.write(
      Buffer.concat([
        wire('P', Buffer.from('\0INSERT INTO batch_t VALUES (1)\0\0\0')),
        wire('B', Buffer.from('\0\0\0\0\0\0\0\0')),
        wire('E', Buffer.from('\0\0\0\0\0')),
      ]),
    );
    await received.waitFor('C'); // CommandComplete: the row is inserted, not yet committed
    socket.destroy();

    const next = await client(embedded.url);
    expect(await scalar(next, 'SELECT count(*)::int AS value FROM batch_t')).toBe(0);
  });

  it('refuses, after the admission timeout, a connection while another stays open (TCP on 127.0.0.1)', async () => {
    const embedded = await start({ dataDir: copyOfTemplate(), transport: 'tcp', admissionTimeoutMs: 300 });
    expect(embedded.url).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    await client(embedded.url);
    const second = new Client({ connectionString: embedded.url });
    second.on('error', () => undefined);
    await expect(second.connect()).rejects.toThrow(/one connection at a time.*max: 1/);
  });

  it('puts the socket in a private temporary directory when the data directory path is too long', async () => {
    const dataDir = join(scratch, 'a-rather-long-directory-name-'.repeat(3), 'data');
    mkdirSync(join(dataDir, '..'), { recursive: true });
    cpSync(template, dataDir, { recursive: true });
    const embedded = await start({ dataDir });
    const socketDir = new URL(embedded.url).searchParams.get('host')!;
    expect(socketDir.startsWith(tmpdir())).toBe(true);
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(await scalar(await client(embedded.url), 'SELECT 1 AS value')).toBe(1);
    await embedded.close();
    expect(existsSync(socketDir)).toBe(false);
  });
});

describe('the data directory lock', () => {
  it('refuses a directory already open in this process', async () => {
    const { dataDir } = shared;
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(EmbeddedPostgresLockedError);
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/already open in this process/);
  });

  it('refuses a directory locked by another live process, naming it', async () => {
    const dataDir = copyOfTemplate();
    const owner = process.ppid; // alive: the vitest main process
    const stat = readFileSync(`/proc/${owner}/stat`, 'utf8');
    writeLock(dataDir, { pid: owner, processStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] });
    const error = await startEmbeddedPostgres({ dataDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmbeddedPostgresLockedError);
    expect((error as EmbeddedPostgresLockedError).ownerPid).toBe(owner);
    expect((error as Error).message).toContain(`in use by process ${owner}`);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(true); // left alone
  });

  it('takes over the lock of a process that is gone, or whose PID now belongs to another process', async () => {
    const exited = spawnSync(process.execPath, ['-e', '0']).pid;
    const dataDir = copyOfTemplate();
    writeLock(dataDir, { pid: exited });
    await (await startEmbeddedPostgres({ dataDir })).close();

    writeLock(dataDir, { pid: process.ppid, processStart: '1' }); // same PID, another start time: reused
    await (await startEmbeddedPostgres({ dataDir })).close();

    writeLock(dataDir, { pid: process.pid }); // an earlier process with this PID (PID 1 in containers)
    await (await startEmbeddedPostgres({ dataDir })).close();

    writeFileSync(join(dataDir, LOCK_FILE), 'garbage');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dataDir, LOCK_FILE), old, old);
    await (await startEmbeddedPostgres({ dataDir })).close();
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  });
});

function writeLock(dataDir: string, owner: { pid: number; processStart?: string }): void {
  writeFileSync(
    join(dataDir, LOCK_FILE),
    JSON.stringify({ hostname: 'test', since: new Date().toISOString(), token: 'stale', ...owner }),
  );
}

function wire(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function startupPacket(): Buffer {
  const body = Buffer.from('user\0postgres\0database\0postgres\0\0');
  const header = Buffer.alloc(8);
  header.writeInt32BE(body.length + 8, 0);
  header.writeInt32BE(196608, 4);
  return Buffer.concat([header, body]);
}

/** Backend messages from `socket`; waitFor(type) resolves once a message of that type has arrived. */
function collect(socket: Socket): { waitFor(type: string): Promise<void> } {
  let buffer = Buffer.alloc(0);
  const seen = new Set<string>();
  const waiters: Array<{ type: string; done: () => void }> = [];
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 5 && buffer.length >= 1 + buffer.readInt32BE(1)) {
      seen.add(String.fromCharCode(buffer[0]!));
      buffer = buffer.subarray(1 + buffer.readInt32BE(1));
    }
    for (const waiter of waiters.filter((w) => seen.has(w.type))) waiter.done();
  });
  return {
    waitFor: (type) =>
      seen.has(type) ? Promise.resolve() : new Promise<void>((done) => waiters.push({ type, done })),
  };
}
