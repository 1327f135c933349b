import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';

/** A throwaway PostgreSQL server on 127.0.0.1, started by {@link startTestPostgres}. */
export interface TestPostgres {
  /** The TCP port on 127.0.0.1; the server listens nowhere else. */
  readonly port: number;
  /** `server_version` without a distribution suffix, e.g. `15.18`. */
  readonly version: string;
  /**
   * Creates a database (`CREATE DATABASE ... TEMPLATE`: a copy of the template set by {@link useTemplate},
   * else empty) and returns its URL, `postgres://postgres@127.0.0.1:<port>/<name>`. The name (letters,
   * digits, `_` and `-`; at most 63) defaults to a fresh `test_<n>`.
   */
  createDatabase(name?: string): Promise<string>;
  /**
   * Makes the database at `url` (on this server) the template of every later {@link createDatabase}, e.g.
   * once migrations ran in it. The database is frozen: it accepts no more connections and cannot be dropped.
   * Close your own connections to it first; open ones are waited for up to 5 s, then this rejects.
   */
  useTemplate(url: string): Promise<void>;
  /** Stops the server and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startTestPostgres}. */
export interface TestPostgresOptions {
  /**
   * Keep PostgreSQL's durability settings (`fsync`, `synchronous_commit`, `full_page_writes`) on. Off by
   * default: the data directory is thrown away, so flushing it to disk only costs time.
   */
  readonly fsync?: boolean;
}

const SUPERUSER = 'postgres';
const ADMIN_APPLICATION_NAME = 'wsmon-test-postgres';
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const TEMPLATE_RELEASE_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 3;
const LOG_TAIL_LINES = 30;

/**
 * Starts a PostgreSQL server of its own for tests from the locally installed server binaries (no Docker, no
 * system service): `initdb` into a new temporary directory, then `postgres` listening on 127.0.0.1 only, on
 * a free port, with trust authentication for the superuser `postgres`.
 *
 * The binaries are taken from `$WSMON_PG_BIN`, else `pg_config --bindir`, else the newest
 * `/usr/lib/postgresql/<version>/bin`, else `PATH`. When run as root (as in CI), the server runs as the
 * `postgres` system user (created by the Debian package), or `nobody` if there is none: PostgreSQL refuses
 * to run as root.
 *
 * The server is killed and its directory removed even if the calling process never calls
 * {@link TestPostgres.stop}: on `exit`, and by a watchdog process if the caller is killed outright.
 *
 * For a vitest `globalSetup`: start it there, `provide` a URL from {@link TestPostgres.createDatabase}, and
 * return `stop` as the teardown.
 */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = findServerBinaries();
  const owner = serverOwner();
  const base = tmpdir();
  if (owner) assertReachable(base, owner);
  const dir = await mkdtemp(join(base, 'wsmon-pg-'));
  let server: Server | undefined;
  try {
    if (owner) await chown(dir, owner.uid, owner.gid);
    await initdb(bin, dir, owner);
    for (let attempt = 1; ; attempt++) {
      server = new Server(bin, dir, await freePort(), owner, options.fsync ?? false);
      try {
        const admin = await waitUntilReady(server);
        const version = await admin.client.query<{ server_version: string }>('SHOW server_version');
        const full = version.rows[0]?.server_version ?? '';
        return new Instance(server, dir, admin, /^\d+(?:\.\d+)*/.exec(full)?.[0] ?? full);
      } catch (error) {
        // The port was free a moment ago, but another process may have taken it meanwhile.
        const portTaken = !server.running() && /could not bind/i.test(server.log());
        if (!portTaken || attempt >= PORT_ATTEMPTS) throw error;
        await server.stop();
        server.release();
      }
    }
  } catch (error) {
    await server?.stop();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    server?.release();
    throw error;
  }
}

class Instance implements TestPostgres {
  readonly port: number;
  private template = 'template0';
  private created = 0;
  private pendingQueries = 0;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly server: Server,
    private readonly dir: string,
    private readonly admin: AdminConnection,
    readonly version: string,
  ) {
    this.port = server.port;
    admin.socket.unref();
  }

  async createDatabase(name = `test_${++this.created}`): Promise<string> {
    // Longer names would be truncated by PostgreSQL, and clients disagree on decoding other characters from
    // a URL (pg uses decodeURI): the URL must name exactly this database for every client.
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) {
      throw new Error(`Database names are 1 to 63 of [A-Za-z0-9_-] here: ${JSON.stringify(name)}`);
    }
    await this.query(`CREATE DATABASE ${identifier(name)} TEMPLATE ${identifier(this.template)}`);
    return `postgres://${SUPERUSER}@127.0.0.1:${this.port}/${name}`;
  }

  async useTemplate(url: string): Promise<void> {
    const name = this.databaseOf(url);
    // A template must have no sessions while it is copied, so none may open from now on.
    await this.query(`ALTER DATABASE ${identifier(name)} IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    const deadline = Date.now() + TEMPLATE_RELEASE_TIMEOUT_MS;
    for (;;) {
      const sessions = await this.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = $1',
        [name],
      );
      const count = sessions[0]?.count ?? 0;
      if (count === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `Database "${name}" still has ${count} open connection(s) after ${TEMPLATE_RELEASE_TIMEOUT_MS} ms: ` +
            'close them (e.g. await dataSource.destroy()) before useTemplate',
        );
      }
      await sleep(20);
    }
    this.template = name;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.admin.socket.ref();
      await this.admin.client.end().catch(() => undefined);
      await this.server.stop();
      await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
      this.server.release();
    })();
    return this.stopping;
  }

  private databaseOf(url: string): string {
    const parsed = new URL(url);
    if (
      !['postgres:', 'postgresql:'].includes(parsed.protocol) ||
      parsed.hostname !== '127.0.0.1' ||
      parsed.port !== String(this.port) ||
      parsed.pathname.length < 2
    ) {
      throw new Error(`Not a database URL of this server (127.0.0.1:${this.port}): ${url}`);
    }
    return decodeURIComponent(parsed.pathname.slice(1));
  }

  private async query<Row extends object>(sql: string, values?: unknown[]): Promise<Row[]> {
    if (this.stopping) throw new Error('The test PostgreSQL server has been stopped');
    // The idle connection must not keep the process alive (a forgotten stop() is cleaned up on exit), but
    // one in use must, or a script awaiting this query could end before it completes.
    if (this.pendingQueries++ === 0) this.admin.socket.ref();
    try {
      return (await this.admin.client.query<Row>(sql, values)).rows;
    } catch (error) {
      if (!this.server.running()) {
        throw new Error(`The test PostgreSQL server is gone. ${this.server.logTail()}`, { cause: error });
      }
      throw error;
    } finally {
      if (--this.pendingQueries === 0) this.admin.socket.unref();
    }
  }
}

interface AdminConnection {
  readonly client: Client;
  readonly socket: Socket;
}

interface Owner {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

function findServerBinaries(): string {
  const hasServer = (dir: string): boolean =>
    ['initdb', 'postgres'].every((name) => {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  const fromEnv = process.env['WSMON_PG_BIN'];
  if (fromEnv) {
    if (hasServer(fromEnv)) return fromEnv;
    throw new Error(
      `WSMON_PG_BIN=${fromEnv} does not hold the PostgreSQL server binaries initdb and postgres`,
    );
  }
  // Each candidate is checked for the binaries themselves: Debian's /usr/bin/pg_config comes with libpq-dev
  // and names the bindir of the libpq version, which need not be an installed server.
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: 'pipe' }).trim());
  } catch {
    // no pg_config
  }
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((name) => /^\d+(?:\.\d+)?$/.test(name));
    versions.sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((version) => join(debian, version, 'bin')));
  }
  candidates.push(...(process.env['PATH'] ?? '').split(':').filter(Boolean));
  const found = candidates.find(hasServer);
  if (found) return found;
  throw new Error(
    'PostgreSQL server binaries (initdb, postgres) not found in $WSMON_PG_BIN, `pg_config --bindir`, ' +
      '/usr/lib/postgresql/*/bin or PATH. Install them (Debian/Ubuntu: apt-get install -y postgresql) ' +
      'or set WSMON_PG_BIN to the directory holding them.',
  );
}

/** The user to run the server as, or undefined to run it as ourselves. */
function serverOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const id = (flag: string): number =>
        Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: 'pipe' }).trim());
      return { name, uid: id('-u'), gid: id('-g') };
    } catch {
      // no such user
    }
  }
  throw new Error(
    'Running as root, but there is neither a "postgres" nor a "nobody" user to run PostgreSQL as',
  );
}

function assertReachable(path: string, owner: Owner): void {
  for (let dir = path; ; dir = dirname(dir)) {
    const { uid, mode } = statSync(dir);
    if (!(mode & (uid === owner.uid ? 0o100 : 0o001))) {
      throw new Error(
        `The temporary directory ${path} is out of reach of the "${owner.name}" user PostgreSQL runs as ` +
          `(${dir} is not searchable by it): set TMPDIR to a directory such as /tmp`,
      );
    }
    if (dirname(dir) === dir) return;
  }
}

/** Environment of initdb and postgres: English messages, and no scan of the zone files for the time zone. */
function serverEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', TZ: 'UTC' };
}

function initdb(bin: string, dir: string, owner: Owner | undefined): Promise<void> {
  const args = [
    ...['-D', join(dir, 'data'), `--username=${SUPERUSER}`, '--auth=trust'],
    ...['--encoding=UTF8', '--locale=C', '--no-sync'],
  ];
  return new Promise((resolve, reject) => {
    execFile(
      join(bin, 'initdb'),
      args,
      { cwd: dir, env: serverEnv(), uid: owner?.uid, gid: owner?.gid, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (!error) return resolve();
        const output = `${stdout}${stderr}`.trim();
        const as = owner ? ` as user "${owner.name}"` : '';
        reject(new Error(`initdb${as} failed: ${error.message}\n${output}`, { cause: error }));
      },
    );
  });
}

async function waitUntilReady(server: Server): Promise<AdminConnection> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!server.running()) throw new Error(`PostgreSQL exited during startup. ${server.logTail()}`);
    const socket = new Socket();
    const client = new Client({
      stream: () => socket,
      host: '127.0.0.1',
      port: server.port,
      user: SUPERUSER,
      database: 'postgres',
      ssl: false,
      application_name: ADMIN_APPLICATION_NAME,
      connectionTimeoutMillis: 2_000,
    });
    // Without a listener, the server going away while connected would crash the process.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { client, socket };
    } catch (error) {
      lastError = error;
      // end() of a client whose connection failed may never settle: let it go.
      void client.end().catch(() => undefined);
    }
    await sleep(25);
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(
    `PostgreSQL did not accept connections within ${READY_TIMEOUT_MS} ms (${reason}). ${server.logTail()}`,
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        address && typeof address === 'object' ? resolve(address.port) : reject(new Error()),
      );
    });
  });
}

/**
 * Kills the server's process group and removes the directory once its stdin closes, which happens when the
 * test process dies however it dies, unless it said `stopped` first.
 */
const WATCHDOG_SCRIPT =
  'read -r line; [ "$line" = stopped ] && exit 0; kill -s KILL -- "-$1"; rm -rf -- "$2"';

const running = new Set<Server>();
let exitHookInstalled = false;

function track(server: Server): void {
  running.add(server);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const leftover of running) leftover.killNow();
  });
}

/** One `postgres` process (the postmaster, leader of its own process group) and its data directory. */
class Server {
  private readonly exited: Promise<void>;
  private readonly child: ChildProcess;
  private readonly watchdog: ChildProcess | undefined;
  private spawnError: Error | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    bin: string,
    private readonly dir: string,
    readonly port: number,
    owner: Owner | undefined,
    fsync: boolean,
  ) {
    const settings = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      ...(fsync ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
    };
    const args = ['-D', join(dir, 'data'), '-p', String(port)];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    const log = openSync(this.logFile(), 'w');
    try {
      this.child = spawn(join(bin, 'postgres'), args, {
        cwd: dir,
        env: serverEnv(),
        uid: owner?.uid,
        gid: owner?.gid,
        detached: true,
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.once('error', (error) => {
        this.spawnError = error;
        resolve();
      });
    });
    this.child.unref();
    if (this.child.pid === undefined) return;
    track(this);
    this.watchdog = spawn(
      '/bin/sh',
      ['-c', WATCHDOG_SCRIPT, 'wsmon-pg-watchdog', String(this.child.pid), dir],
      {
        detached: true,
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    );
    this.watchdog.on('error', () => undefined);
    this.watchdog.stdin?.on('error', () => undefined);
    this.watchdog.unref();
    (this.watchdog.stdin as { unref?: () => void } | null)?.unref?.();
  }

  running(): boolean {
    return this.spawnError === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  log(): string {
    const spawnError = this.spawnError ? `${this.spawnError.message}\n` : '';
    try {
      return spawnError + readFileSync(this.logFile(), 'utf8');
    } catch {
      return spawnError;
    }
  }

  logTail(): string {
    const lines = this.log().trimEnd().split('\n').slice(-LOG_TAIL_LINES);
    return `Server log, last lines:\n${lines.join('\n')}`;
  }

  /** Stops the server, disconnecting its clients; kills it if it takes too long. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (!this.running()) return;
      // Referenced again so that the process waits for the exit instead of ending meanwhile.
      this.child.ref();
      // Fast shutdown: disconnects clients instead of waiting for them.
      this.child.kill('SIGINT');
      const timeout = setTimeout(() => this.killGroup(), STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timeout);
    })();
    return this.stopping;
  }

  /** Tells the watchdog that the server is stopped and its directory removed. */
  release(): void {
    this.watchdog?.stdin?.end('stopped\n');
    running.delete(this);
  }

  /** Synchronous last resort, for process exit. */
  killNow(): void {
    this.killGroup();
    try {
      rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // the watchdog retries
    }
  }

  private killGroup(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  private logFile(): string {
    return join(this.dir, 'postgres.log');
  }
}

function identifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
