import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireDirectoryLock, DirectoryLockedError, type DirectoryLock } from './directory-lock';

const FILE = 'test.lock';

let dir: string;
const locks: DirectoryLock[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wsmon-lock-'));
});

afterEach(() => {
  for (const lock of locks.splice(0)) lock.release();
  rmSync(dir, { recursive: true, force: true });
});

async function lock(): Promise<DirectoryLock> {
  const taken = await acquireDirectoryLock(dir, FILE, 'test');
  locks.push(taken);
  return taken;
}

function writeLock(owner: object, ageSeconds = 0): void {
  const path = join(dir, FILE);
  writeFileSync(path, JSON.stringify(owner));
  const then = new Date(Date.now() - ageSeconds * 1000);
  utimesSync(path, then, then);
}

describe(acquireDirectoryLock.name, () => {
  it('writes its owner, refuses a second taker in this process, and releases', async () => {
    const taken = await lock();
    expect(JSON.parse(readFileSync(taken.path, 'utf8'))).toMatchObject({ pid: process.pid });
    await expect(acquireDirectoryLock(dir, FILE, 'test')).rejects.toBeInstanceOf(DirectoryLockedError);

    taken.release();
    expect(existsSync(taken.path)).toBe(false);
    await lock();
  });

  it('refuses a lock held by a live process, naming it', async () => {
    writeLock({ pid: process.ppid, hostname: 'here', since: 'now', token: 'theirs' });

    const error = await lock().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DirectoryLockedError);
    expect((error as DirectoryLockedError).ownerPid).toBe(process.ppid);
    expect((error as Error).message).toContain(`process ${process.ppid}`);
  });

  it('takes over a lock whose PID now belongs to another process (a different start time)', async () => {
    writeLock({ pid: process.ppid, processStart: '1', hostname: 'here', since: 'then', token: 'old' });
    const taken = await lock();
    expect(JSON.parse(readFileSync(taken.path, 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('takes over an unreadable lock once it is too old to be still being written', async () => {
    writeLock({ not: 'a lock' }, 5);
    await lock();
  });

  it('does not remove a lock it no longer owns', async () => {
    const taken = await lock();
    writeLock({ pid: process.ppid, hostname: 'here', since: 'now', token: 'someone else' });
    taken.release();
    expect(existsSync(taken.path)).toBe(true);
  });
});
