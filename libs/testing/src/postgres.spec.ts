import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from './postgres';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MODULE_PATH = fileURLToPath(new URL('./postgres.ts', import.meta.url));

const clients = new Set<Client>();

async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url });
  // The server stopping under an open connection must not crash the test process.
  client.on('error', () => undefined);
  await client.connect();
  clients.add(client);
  return client;
}

async function disconnect(client: Client): Promise<void> {
  clients.delete(client);
  await client.end();
}

async function query<Row extends object>(url: string, sql: string): Promise<Row[]> {
  const client = await connect(url);
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await disconnect(client);
  }
}

async function tableNames(url: string): Promise<string[]> {
  const rows = await query<{ name: string }>(
    url,
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
  );
  return rows.map((row) => row.name);
}

/** Live processes whose command line mentions `text` (the data directory is on the postmaster's). */
function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // The command name in field 2 is parenthesised and may contain spaces: count after its end.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe('startTestPostgres', () => {
  let pg: TestPostgres;
  let other: TestPostgres;

  beforeAll(async () => {
    [pg, other] = await Promise.all([startTestPostgres(), startTestPostgres()]);
  });

  afterAll(async () => {
    await Promise.all([...clients].map((client) => client.end().catch(() => undefined)));
    await Promise.all([pg?.stop(), other?.stop()]);
  });

  it('reports the port and the server version', async () => {
    expect(pg.port).toBeGreaterThan(0);
    expect(pg.version).toMatch(/^\d+(\.\d+)+$/);
    const url = await pg.createDatabase();
    const [row] = await query<{ server_version: string; address: string; port: number }>(
      url,
      'SELECT current_setting($$server_version$$) AS server_version, inet_server_addr()::text AS address, ' +
        'inet_server_port() AS port',
    );
    expect(row?.server_version.startsWith(pg.version)).toBe(true);
    expect(row).toMatchObject({ address: '127.0.0.1/32', port: pg.port });
  });

  it('creates independent, empty databases', async () => {
    const first = await pg.createDatabase();
    const second = await pg.createDatabase();
    expect(first).not.toBe(second);
    expect(first).toMatch(new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:${pg.port}/test_\\d+$`));

    await query(first, 'CREATE TABLE only_in_first (id int)');
    expect(await tableNames(first)).toEqual(['only_in_first']);
    expect(await tableNames(second)).toEqual([]);
    const [row] = await query<{ name: string }>(second, 'SELECT current_database() AS name');
    expect(second.endsWith(`/${row?.name}`)).toBe(true);
  });

  it('takes a database name, and rejects one a URL would not carry faithfully', async () => {
    const url = await pg.createDatabase('Named-db_1');
    expect(url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/Named-db_1`);
    expect(await query(url, 'SELECT current_database() AS name')).toEqual([{ name: 'Named-db_1' }]);
    await expect(pg.createDatabase('a/b')).rejects.toThrow(/Database names/);
    await expect(pg.createDatabase('x'.repeat(64))).rejects.toThrow(/Database names/);
    await expect(pg.createDatabase('Named-db_1')).rejects.toThrow(/already exists/);
  });

  it('runs a second instance alongside, with databases of its own', async () => {
    expect(other.port).not.toBe(pg.port);
    const mine = await pg.createDatabase('same_name');
    const theirs = await other.createDatabase('same_name');
    await query(mine, 'CREATE TABLE mine (id int)');
    expect(await tableNames(theirs)).toEqual([]);
    expect(await tableNames(mine)).toEqual(['mine']);
  });

  // Runs after every other test of `pg`: from here on, its new databases are copies of this template.
  it('copies the template set by useTemplate, schema and rows, into each new database', async () => {
    const template = await pg.createDatabase('migrated');
    const setup = await connect(template);
    await setup.query('CREATE TABLE monitor (id int PRIMARY KEY, name text NOT NULL)');
    await setup.query("INSERT INTO monitor VALUES (1, 'seeded'), (2, 'also seeded')");
    await disconnect(setup);

    await pg.useTemplate(template);
    const [a, b] = [await pg.createDatabase(), await pg.createDatabase()];
    await query(a, "INSERT INTO monitor VALUES (3, 'only in a')");
    expect(await query(a, 'SELECT name FROM monitor ORDER BY id')).toEqual([
      { name: 'seeded' },
      { name: 'also seeded' },
      { name: 'only in a' },
    ]);
    expect(await query(b, 'SELECT name FROM monitor ORDER BY id')).toEqual([
      { name: 'seeded' },
      { name: 'also seeded' },
    ]);
    // Frozen: a connection to the template would block every later createDatabase.
    await expect(connect(template)).rejects.toThrow(/not currently accepting connections/);
  });

  it('rejects a URL of another server as template', async () => {
    await expect(pg.useTemplate(`postgres://postgres@127.0.0.1:${other.port}/postgres`)).rejects.toThrow(
      /Not a database URL of this server/,
    );
  });

  it('stops the server, connected clients or not, and removes its directory', async () => {
    const url = await other.createDatabase();
    const held = await connect(url);
    const { rows } = await held.query<{ dir: string; backend: number }>(
      'SELECT current_setting($$data_directory$$) AS dir, pg_backend_pid() AS backend',
    );
    const { dir, backend } = rows[0]!;
    const [postmaster] = processesMentioning(dir).filter((pid) => childrenOf(pid).includes(backend));
    expect(postmaster).toBeDefined();
    const processes = [postmaster!, ...childrenOf(postmaster!)];
    expect(processes.length).toBeGreaterThan(3);

    await other.stop();
    expect(existsSync(dir)).toBe(false);
    expect(processes.filter(alive)).toEqual([]);
    // The watchdog (whose command line names the directory too) leaves once told the server is stopped.
    expect(await eventually(() => processesMentioning(dir).length === 0)).toBe(true);
    await other.stop();
    await expect(other.createDatabase()).rejects.toThrow(/stopped/);
  });

  it('leaves no server behind when the process that started it is killed outright', async () => {
    const script = [
      '(async () => {',
      `  const { startTestPostgres } = require(${JSON.stringify(MODULE_PATH)});`,
      "  const { Client } = require('pg');",
      '  const servers = await Promise.all([startTestPostgres(), startTestPostgres()]);',
      '  const dirs = [];',
      '  for (const server of servers) {',
      '    const client = new Client({ connectionString: await server.createDatabase() });',
      '    await client.connect();',
      "    dirs.push((await client.query('SHOW data_directory')).rows[0].data_directory);",
      '    await client.end();',
      '  }',
      '  console.log(JSON.stringify(dirs));',
      '  setInterval(() => undefined, 1000);',
      '})();',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const dirs = await new Promise<string[]>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(JSON.parse(out) as string[]);
      });
      child.once('exit', (code) => reject(new Error(`child exited with ${code}: ${out}`)));
    });
    expect(dirs).toHaveLength(2);
    for (const dir of dirs) expect(processesMentioning(dir).length).toBeGreaterThan(0);

    child.kill('SIGKILL');
    for (const dir of dirs) {
      expect(await eventually(() => processesMentioning(dir).length === 0)).toBe(true);
      expect(await eventually(() => !existsSync(dir))).toBe(true);
    }
  });
});
