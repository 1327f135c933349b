import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireDirectoryLock, DirectoryLockedError, type DirectoryLock } from '@wsmon/runtime';
import { PGlite } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

/**
 * The embedded PostgreSQL: PGlite (PostgreSQL compiled to WebAssembly, run in this process) with its data
 * in a directory, served over the PostgreSQL wire protocol so that `pg` and TypeORM use it as they use a
 * real server.
 *
 * One connection only. PGlite is a single-user backend: one session. Every client connection is fed into
 * that same session, so two connections would share transaction state (one client's BEGIN would swallow the
 * other's statements, a ROLLBACK would undo both), the unnamed prepared statement and portal of the extended
 * protocol (which pg uses for every parameterised query), and all session settings. The server therefore
 * admits one connection at a time; a second one waits until the first has closed, and is refused after
 * `admissionTimeoutMs` with SQLSTATE 53300. Clients must use a pool of exactly one connection (pg and
 * TypeORM: `max: 1`). When a connection closes, its session is reset (an unfinished transaction is rolled
 * back, then `DISCARD ALL`), so the next connection starts clean, as with a real server.
 *
 * Why not `PGLiteSocketServer` from `@electric-sql/pglite-socket` 0.2.17: with `maxConnections: 1` it
 * refuses a new connection until it has processed the close of the previous one, so a pool of one that
 * replaces a connection (idle timeout, error) fails at random: measured 23 failed queries out of 100 with
 * `pg.Pool({ max: 1, idleTimeoutMillis: 20 })`, each `write EPIPE`. With more connections allowed it lets
 * them interleave (see above). The wire handling it does (framing, SSL refusal, cancel requests) is small and
 * is done here; PGlite's own `execProtocolRawStream` runs the messages, exactly as pglite-socket does.
 *
 * Durability (PGlite 0.5.14, PostgreSQL 18.6 in WASM, Emscripten NODEFS onto the data directory). PGlite
 * starts PostgreSQL with `-F` (fsync off). Under NODEFS every write() of PostgreSQL is a synchronous
 * `fs.writeSync` on the host file, so a commit's WAL record reaches the kernel before the commit returns
 * (synchronous_commit=on), which alone survives `kill -9` of this process. Surviving an OS crash or power
 * loss needs data on disk, which PGlite does not do: NODEFS has no fsync stream operation, so Emscripten's
 * fsync() returns success without syncing, fdatasync() is a stub returning 0, and `relaxedDurability` only
 * matters for filesystems with a `syncToFs` (NodeFS's is empty). So here:
 * - PostgreSQL runs with fsync=on, synchronous_commit=on, full_page_writes=on, and
 *   wal_sync_method=open_datasync: the WAL is opened with O_DSYNC, which NODEFS maps to the host's O_SYNC,
 *   so a commit returns only once its WAL is on disk (no reliance on the fsync patch below);
 * - NODEFS gets an fsync operation that calls the host fsync (files; directories by path), so checkpoints,
 *   the data directory sync after a crash, and every other pg_fsync really flush;
 * - a new cluster (PGlite runs initdb in memory, then copies the files in) is created aside, fsynced, and
 *   renamed into place.
 * The settings are checked after start; a mismatch is an error. The kill -9 proof is
 * e2e/embedded-durability; a power cut was not simulated.
 *
 * One process per data directory. PGlite offers no protection: its postmaster.pid always holds the fake PID
 * -42 (WASM), which PostgreSQL takes for its own stale file, so a second process opens the directory
 * happily and the two corrupt it. A lock file (`embedded-postgres.lock`: PID, process start time, host)
 * guards the directory: a live owner makes the start fail with {@link EmbeddedPostgresLockedError}; an
 * owner that is gone (kill -9, crash, PID reused) leaves a stale lock that is taken over. The socket file it
 * left is removed; the postmaster.pid it left is ignored by PostgreSQL itself (the same fake PID).
 */
export interface EmbeddedPostgres {
  /**
   * A postgres:// URL that `pg`/TypeORM use with a pool of exactly one connection. By default it points at a
   * unix socket in the data directory (`?host=<dir>`; only this user can connect, as there is no password).
   */
  readonly url: string;
  /** The data directory, absolute. PostgreSQL's files are in its `pgdata` subdirectory. */
  readonly dataDir: string;
  /** `SHOW server_version`, e.g. `18.6`. */
  readonly serverVersion: string;
  /**
   * Clean shutdown: stops the server (open connections are closed, an unfinished transaction is rolled
   * back), closes PGlite (shutdown checkpoint), releases the directory. Idempotent.
   */
  close(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Created if missing (mode 0700). */
  readonly dataDir: string;
  /**
   * `unix` (default except on Windows): a socket `.s.PGSQL.5432` in the data directory, or in a private
   * temporary directory when that path is too long for a socket. `tcp`: 127.0.0.1 on a free port; any local
   * user can then connect, without a password.
   */
  readonly transport?: 'unix' | 'tcp';
  /** How long a second connection waits for the first to close before it is refused. Default 10 s. */
  readonly admissionTimeoutMs?: number;
}

/** The data directory is used by a live process (this one or another). */
export class EmbeddedPostgresLockedError extends Error {
  override readonly name = 'EmbeddedPostgresLockedError';
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
    message: string,
  ) {
    super(message);
  }
}

const PGDATA_SUBDIR = 'pgdata';
const LOCK_FILE = 'embedded-postgres.lock';
const SOCKET_PORT = 5432;
const SOCKET_NAME = `.s.PGSQL.${SOCKET_PORT}`;
/** sun_path is 104 bytes on macOS, 108 on Linux, both including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 103;
const DEFAULT_ADMISSION_TIMEOUT_MS = 10_000;

/**
 * PGlite's defaults (single-user mode, no parallel workers, io_method=sync, ...) without `-F`, plus the
 * durability settings. `-c` (command line) wins over postgresql.conf and postgresql.auto.conf.
 */
const DURABILITY_SETTINGS: Readonly<Record<string, string>> = {
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  wal_sync_method: 'open_datasync',
};
const START_PARAMS = [
  ...PGlite.defaultStartParams.filter((param) => param !== '-F'),
  ...Object.entries(DURABILITY_SETTINGS).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
];

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const dataDir = realpathSync(options.dataDir);
  const lock = await acquireDataDirLock(dataDir);
  const cleanup: Array<() => Promise<void> | void> = [() => lock.release()];
  /** Runs every cleanup step, last first, even if one fails; rejects with the first failure. */
  const undo = async () => {
    let failure: unknown;
    for (const step of [...cleanup].reverse()) {
      try {
        await step();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) {
      throw failure instanceof Error
        ? failure
        : new Error('embedded PostgreSQL: cleanup failed', { cause: failure });
    }
  };
  try {
    const pgdata = join(dataDir, PGDATA_SUBDIR);
    if (!existsPath(join(pgdata, 'PG_VERSION'))) await initialiseCluster(dataDir, pgdata);
    const db = await openPGlite(pgdata);
    cleanup.push(() => db.close());
    await checkDurabilitySettings(db);
    const serverVersion = (await db.query<{ server_version: string }>('SHOW server_version')).rows[0]!
      .server_version;

    const server = new OneSessionServer(db, options.admissionTimeoutMs ?? DEFAULT_ADMISSION_TIMEOUT_MS);
    const transport = options.transport ?? (process.platform === 'win32' ? 'tcp' : 'unix');
    let url: string;
    if (transport === 'tcp') {
      const port = await server.listenTcp('127.0.0.1');
      cleanup.push(() => server.close());
      url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
    } else {
      let socketDir = dataDir;
      if (Buffer.byteLength(join(socketDir, SOCKET_NAME)) > MAX_SOCKET_PATH_BYTES) {
        socketDir = await mkdtemp(join(tmpdir(), 'wsmon-embedded-pg-')); // mode 0700
        cleanup.push(() => rm(socketDir, { recursive: true, force: true }));
        if (Buffer.byteLength(join(socketDir, SOCKET_NAME)) > MAX_SOCKET_PATH_BYTES) {
          throw new Error(`embedded PostgreSQL: no unix socket path short enough (TMPDIR ${tmpdir()})`);
        }
      }
      const socketPath = join(socketDir, SOCKET_NAME);
      removeStaleSocket(socketPath);
      await server.listenUnix(socketPath);
      cleanup.push(() => server.close());
      await chmod(socketPath, 0o600);
      url = `postgresql://postgres@localhost:${SOCKET_PORT}/postgres?host=${encodeURIComponent(socketDir)}`;
    }

    let closing: Promise<void> | undefined;
    return {
      url,
      dataDir,
      serverVersion,
      close: () => (closing ??= undo()),
    };
  } catch (error) {
    await undo().catch(() => undefined);
    throw error;
  }
}

async function openPGlite(pgdata: string): Promise<PGlite> {
  const fs = new DurableNodeFS(pgdata);
  const db = await PGlite.create({ fs, startParams: START_PARAMS });
  if (!fs.fsyncInstalled) {
    await db.close();
    throw new Error('embedded PostgreSQL: could not install fsync into NODEFS');
  }
  return db;
}

/**
 * Creates the cluster aside and renames it into place once complete and on disk, so that an interrupted
 * first start leaves no half-copied cluster. (PGlite runs initdb in memory, then copies the files in.)
 */
async function initialiseCluster(dataDir: string, pgdata: string): Promise<void> {
  const staging = `${pgdata}.initialising`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { mode: 0o700 });
  await (await openPGlite(staging)).close();
  fsyncTree(staging);
  if (existsPath(pgdata)) rmdirSync(pgdata); // an empty directory only: ENOTEMPTY otherwise
  renameSync(staging, pgdata);
  fsyncPath(dataDir);
}

async function checkDurabilitySettings(db: PGlite): Promise<void> {
  const { rows } = await db.query<{ name: string; setting: string }>(
    'SELECT name, setting FROM pg_settings WHERE name = ANY($1)',
    [Object.keys(DURABILITY_SETTINGS)],
  );
  const actual = new Map(rows.map((row) => [row.name, row.setting]));
  for (const [name, expected] of Object.entries(DURABILITY_SETTINGS)) {
    if (actual.get(name) !== expected) {
      throw new Error(`embedded PostgreSQL: ${name} is ${actual.get(name)}, expected ${expected}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// fsync for PGlite's NODEFS

/** The parts of Emscripten's NODEFS (pglite 0.5.14, Emscripten 6.0.5) that are used here. */
interface EmscriptenNodeFs {
  stream_ops: { fsync?: (stream: EmscriptenStream) => number };
  realPath(node: unknown): string;
  /** Runs a host fs call, turning a Node error into the errno PostgreSQL sees. */
  tryFSOperation<T>(operation: () => T): T;
}
interface EmscriptenStream {
  /** The host descriptor, for regular files only. */
  nfd?: number;
  node: unknown;
}
type PreRun = NonNullable<Parameters<NodeFS['init']>[1]['preRun']>[number];

/** NodeFS whose fsync() reaches the disk (PGlite's returns success and does nothing). */
class DurableNodeFS extends NodeFS {
  fsyncInstalled = false;

  override async init(pg: PGlite, opts: Parameters<NodeFS['init']>[1]) {
    const { emscriptenOpts } = await super.init(pg, opts);
    const installFsync: PreRun = (mod) => {
      const filesystems = (mod.FS as unknown as { filesystems: { NODEFS?: EmscriptenNodeFs } }).filesystems;
      const nodefs = filesystems.NODEFS;
      if (!nodefs) return;
      nodefs.stream_ops.fsync = (stream) =>
        nodefs.tryFSOperation(() => {
          if (typeof stream.nfd === 'number') fsyncSync(stream.nfd);
          else fsyncPath(nodefs.realPath(stream.node));
          return 0;
        });
      this.fsyncInstalled = true;
    };
    return {
      emscriptenOpts: { ...emscriptenOpts, preRun: [...(emscriptenOpts.preRun ?? []), installFsync] },
    };
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync every file and directory under `dir`, then `dir`. */
function fsyncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) fsyncTree(path);
    else if (entry.isFile()) fsyncPath(path);
  }
  fsyncPath(dir);
}

function existsPath(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function removeStaleSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  // Only reached while holding the directory lock: a socket here belongs to a process that is gone.
  if (!isSocket) throw new Error(`embedded PostgreSQL: ${path} exists and is not a socket`);
  unlinkSync(path);
}

// ---------------------------------------------------------------------------------------------------------
// The data directory lock (shared with the agent's spool: @wsmon/runtime)

async function acquireDataDirLock(dataDir: string): Promise<DirectoryLock> {
  try {
    return await acquireDirectoryLock(dataDir, LOCK_FILE, 'embedded PostgreSQL');
  } catch (error) {
    if (error instanceof DirectoryLockedError) {
      throw new EmbeddedPostgresLockedError(dataDir, error.ownerPid, error.message);
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The wire protocol server: one session at a time

const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const CANCEL_REQUEST_CODE = 80877102;
const MAX_STARTUP_PACKET_BYTES = 10_000;
const MAX_MESSAGE_BYTES = 1 << 30;

class OneSessionServer {
  readonly #db: PGlite;
  readonly #admissionTimeoutMs: number;
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  #active: Connection | undefined;
  readonly #waiting: Waiting[] = [];
  #closed = false;

  constructor(db: PGlite, admissionTimeoutMs: number) {
    this.#db = db;
    this.#admissionTimeoutMs = admissionTimeoutMs;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  listenUnix(path: string): Promise<void> {
    return new Promise((resolveListen, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(path, () => {
        this.#server.off('error', reject);
        resolveListen();
      });
    });
  }

  listenTcp(host: string): Promise<number> {
    return new Promise((resolveListen, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, host, () => {
        this.#server.off('error', reject);
        resolveListen((this.#server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening, ends every connection, waits for the session reset. */
  async close(): Promise<void> {
    this.#closed = true;
    const stopped = new Promise<void>((done) => this.#server.close(() => done()));
    const connections = [...this.#connections];
    for (const connection of connections) connection.destroy();
    await Promise.all(connections.map((connection) => connection.finished));
    await stopped;
  }

  get db(): PGlite {
    return this.#db;
  }

  /** Resolves when `connection` may use the session; rejects after the admission timeout. */
  admit(connection: Connection): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the embedded PostgreSQL is shutting down'));
    if (!this.#active) {
      this.#active = connection;
      return Promise.resolve();
    }
    return new Promise((admitted, refused) => {
      const timer = setTimeout(() => {
        this.#stopWaiting(connection)?.refused(
          new AdmissionError(
            `the embedded PostgreSQL serves one connection at a time and another one stayed open for ` +
              `${this.#admissionTimeoutMs} ms: use a pool of one connection (pg/TypeORM: max: 1)`,
          ),
        );
      }, this.#admissionTimeoutMs);
      this.#waiting.push({ connection, admitted, refused, timer });
    });
  }

  /** `connection` was closed before its turn came. */
  abandon(connection: Connection): void {
    this.#stopWaiting(connection)?.refused(new Error('closed while waiting'));
  }

  /** `connection` has ended: forget it, and hand the session to the next waiting connection. */
  release(connection: Connection): void {
    this.#connections.delete(connection);
    this.abandon(connection);
    if (this.#active !== connection) return;
    const next = this.#waiting.shift();
    this.#active = next?.connection;
    if (next) {
      clearTimeout(next.timer);
      next.admitted();
    }
  }

  #stopWaiting(connection: Connection): Waiting | undefined {
    const index = this.#waiting.findIndex((waiting) => waiting.connection === connection);
    if (index < 0) return undefined;
    const [waiting] = this.#waiting.splice(index, 1);
    clearTimeout(waiting!.timer);
    return waiting;
  }

  #accept(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#connections.add(new Connection(socket, this));
  }
}

interface Waiting {
  readonly connection: Connection;
  readonly admitted: () => void;
  readonly refused: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

class AdmissionError extends Error {}

/**
 * One client connection. Messages are handled strictly in order: the SSL/GSS/cancel requests of the
 * start-up phase here, the start-up packet once admitted, then each message by PGlite.
 */
class Connection {
  readonly finished: Promise<void>;

  readonly #socket: Socket;
  readonly #server: OneSessionServer;
  #buffer: Buffer = Buffer.alloc(0);
  #startedUp = false;
  /** Admitted, and the session was used: it needs a reset when the connection ends. */
  #holdsSession = false;
  #ended = false;
  #pumping: Promise<void> = Promise.resolve();
  #isPumping = false;

  constructor(socket: Socket, server: OneSessionServer) {
    this.#socket = socket;
    this.#server = server;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#pump();
    });
    socket.on('error', () => socket.destroy());
    this.finished = new Promise<void>((done) => {
      socket.once('close', () => {
        this.#ended = true;
        server.abandon(this);
        void this.#end().finally(done);
      });
    });
  }

  destroy(): void {
    this.#socket.destroy();
  }

  async #end(): Promise<void> {
    await this.#pumping;
    if (this.#holdsSession) await resetSession(this.#server.db).catch(() => undefined);
    this.#server.release(this);
  }

  #pump(): void {
    if (this.#isPumping) return;
    this.#isPumping = true;
    this.#pumping = (async () => {
      try {
        for (let message = this.#next(); message && !this.#ended; message = this.#next()) {
          await this.#handle(message);
        }
      } catch (error) {
        if (error instanceof AdmissionError && this.#socket.writable) {
          this.#socket.end(errorResponse('53300', error.message));
        } else {
          this.#socket.destroy();
        }
      } finally {
        this.#isPumping = false;
      }
    })();
  }

  /** The next complete message, or undefined. */
  #next(): { readonly bytes: Buffer } | undefined {
    const buffer = this.#buffer;
    const headerBytes = this.#startedUp ? 5 : 4;
    if (buffer.length < headerBytes) return undefined;
    const length = this.#startedUp ? 1 + buffer.readInt32BE(1) : buffer.readInt32BE(0);
    const minimum = this.#startedUp ? 5 : 8;
    const maximum = this.#startedUp ? MAX_MESSAGE_BYTES : MAX_STARTUP_PACKET_BYTES;
    if (length < minimum || length > maximum) {
      this.#buffer = Buffer.alloc(0);
      this.#ended = true;
      this.#socket.destroy();
      return undefined;
    }
    if (buffer.length < length) return undefined;
    this.#buffer = buffer.subarray(length);
    return { bytes: buffer.subarray(0, length) };
  }

  async #handle({ bytes }: { readonly bytes: Buffer }): Promise<void> {
    if (this.#startedUp) {
      if (bytes[0] === 0x58 /* X: Terminate */) {
        this.#ended = true;
        this.#socket.end();
        return;
      }
      await this.#execute(bytes);
      return;
    }
    const code = bytes.readInt32BE(4);
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      this.#socket.write('N'); // not supported: the client goes on unencrypted, or gives up
      return;
    }
    if (code === CANCEL_REQUEST_CODE) {
      this.#socket.end(); // PGlite cannot interrupt a running statement
      return;
    }
    if (code >>> 16 !== 3) {
      this.#socket.end(
        errorResponse('08P01', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`),
      );
      return;
    }
    await this.#server.admit(this);
    this.#holdsSession = true;
    this.#startedUp = true;
    if (this.#ended) return;
    await this.#execute(bytes);
  }

  async #execute(message: Uint8Array): Promise<void> {
    const db = this.#server.db;
    await db.runExclusive(() =>
      db.execProtocolRawStream(message, {
        onRawData: (data) => {
          if (!this.#ended && data.length > 0) this.#socket.write(data);
        },
      }),
    );
  }
}

/**
 * Leaves the session as a new connection expects it, whatever the last one left behind: an extended-query
 * batch cut before its Sync (its implicit transaction must not be committed), a COPY in progress, an open
 * or failed transaction block, settings, prepared statements, temporary tables, listens, advisory locks.
 */
async function resetSession(db: PGlite): Promise<void> {
  const discard = { onRawData: () => undefined };
  await db.runExclusive(async () => {
    // A Bind that fails aborts whatever runs (PostgreSQL then skips to the Sync).
    await db.execProtocolRawStream(bindToMissingStatement(), discard);
    await db.execProtocolRawStream(message('S', Buffer.alloc(0)), discard);
    if (db.isInTransaction()) await db.execProtocolRawStream(simpleQuery('ROLLBACK'), discard);
    await db.execProtocolRawStream(simpleQuery('DISCARD ALL'), discard);
  });
}

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function simpleQuery(sql: string): Buffer {
  return message('Q', Buffer.from(`${sql}\0`));
}

function bindToMissingStatement(): Buffer {
  const names = Buffer.from('\0wsmon_embedded_session_reset_no_such_statement\0');
  return message('B', Buffer.concat([names, Buffer.alloc(6)])); // no formats, no parameters, no results
}

function errorResponse(sqlstate: string, text: string): Buffer {
  const field = (type: string, value: string) => Buffer.from(`${type}${value}\0`);
  return message(
    'E',
    Buffer.concat([
      field('S', 'FATAL'),
      field('V', 'FATAL'),
      field('C', sqlstate),
      field('M', text),
      Buffer.alloc(1),
    ]),
  );
}
