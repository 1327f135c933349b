import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The directory is held by a live process: this one (opened twice) or another. */
export class DirectoryLockedError extends Error {
  override readonly name = 'DirectoryLockedError';
  constructor(
    readonly dir: string,
    readonly ownerPid: number,
    message: string,
  ) {
    super(message);
  }
}

/** An exclusive claim on a directory, held until {@link DirectoryLock.release}. */
export interface DirectoryLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

interface LockOwner {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat (Linux): tells a reused PID from the owner. */
  readonly processStart?: string;
  readonly hostname: string;
  readonly since: string;
  readonly token: string;
}

const ATTEMPTS_MS = 2_000;
const TAKEOVER_STALE_MS = 10_000;
const INCOMPLETE_LOCK_GRACE_MS = 1_000;

/** Lock files held by this process: a PID check cannot tell them from a stale lock of an earlier process. */
const held = new Set<string>();

/**
 * Takes `dir/fileName` as a lock file holding this process's PID (and start time, host, a random token).
 * A lock whose owner is alive makes this fail with {@link DirectoryLockedError}; a lock left by a process
 * that is gone (kill -9, crash, a PID since reused by another program) is taken over.
 *
 * The agent's result spool and the control plane's embedded PostgreSQL both guard their directories with
 * it.
 */
export async function acquireDirectoryLock(
  dir: string,
  fileName: string,
  what: string,
): Promise<DirectoryLock> {
  const path = join(dir, fileName);
  if (held.has(path)) {
    throw new DirectoryLockedError(dir, process.pid, `${what}: ${dir} is already open in this process`);
  }
  const me: LockOwner = {
    pid: process.pid,
    processStart: processStartTime(process.pid),
    hostname: hostname(),
    since: new Date().toISOString(),
    token: randomBytes(12).toString('hex'),
  };
  const deadline = Date.now() + ATTEMPTS_MS;
  for (;;) {
    if (createLockFile(path, me)) {
      held.add(path);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          held.delete(path);
          const owner = readLockFile(path);
          if (typeof owner === 'object' && owner.token === me.token) unlinkSync(path);
        },
      };
    }
    const owner = readLockFile(path);
    if (owner === 'invalid' && ageMs(path) < INCOMPLETE_LOCK_GRACE_MS && Date.now() < deadline) {
      // Possibly being written by a process on a filesystem without hard links (see createLockFile).
      await sleep(50);
      continue;
    }
    if (typeof owner === 'object' && isAlive(owner)) {
      throw new DirectoryLockedError(
        dir,
        owner.pid,
        `${what}: ${dir} is in use by process ${owner.pid} on ${owner.hostname} (since ${owner.since}). ` +
          `Stop that process or use another directory; if no such process exists, delete ${path}.`,
      );
    }
    if (owner !== 'missing') await removeStaleLock(path, owner, deadline);
    if (Date.now() > deadline) throw new Error(`${what}: could not lock ${path}`);
  }
}

/** Creates the lock file, complete, atomically: written aside, then hard-linked into place. */
function createLockFile(path: string, owner: LockOwner): boolean {
  const content = `${JSON.stringify(owner)}\n`;
  const temporary = `${path}.${owner.pid}.${owner.token}`;
  writeDurably(temporary, content);
  try {
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(errorCode(error) ?? '')) throw error;
  } finally {
    unlinkSync(temporary);
  }
  // A filesystem without hard links: exclusive create; a reader may briefly see it empty.
  try {
    writeDurably(path, content);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
}

function writeDurably(path: string, content: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readLockFile(path: string): LockOwner | 'missing' | 'invalid' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isSafeInteger(owner.pid) && (owner.pid ?? 0) > 0 && typeof owner.token === 'string') {
      return owner as LockOwner;
    }
  } catch {
    // not JSON: torn or foreign
  }
  return 'invalid';
}

function isAlive(owner: LockOwner): boolean {
  // This process holds no lock on the path (checked first), so the lock is from an earlier process that had
  // the same PID: usual in containers, where the agent is often PID 1 on every start.
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if (errorCode(error) === 'ESRCH') return false;
    // EPERM: the process exists (another user's).
  }
  const start = processStartTime(owner.pid);
  return start === undefined || owner.processStart === undefined || start === owner.processStart;
}

/**
 * Removes a stale lock. Two processes may find the same stale lock: the takeover runs under a second lock
 * (a directory), and the lock file is removed only if it still is the stale one, never a fresh lock taken in
 * the meantime.
 */
async function removeStaleLock(path: string, stale: LockOwner | 'invalid', deadline: number): Promise<void> {
  const takeover = `${path}.takeover`;
  for (;;) {
    try {
      mkdirSync(takeover);
      break;
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
    if (ageMs(takeover) > TAKEOVER_STALE_MS) {
      try {
        rmdirSync(takeover);
      } catch {
        // removed meanwhile by another process
      }
    }
    if (Date.now() > deadline) return;
    await sleep(20);
  }
  try {
    const current = readLockFile(path);
    const unchanged =
      typeof current === 'object' && typeof stale === 'object'
        ? current.token === stale.token
        : current === 'invalid' && stale === 'invalid';
    if (unchanged) unlinkSync(path);
  } finally {
    rmdirSync(takeover);
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return Infinity;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses; fields resume after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
