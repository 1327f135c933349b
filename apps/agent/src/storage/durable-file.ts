import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Replaces the file at `path` atomically and durably: the content goes to `<path>.tmp`, which is
 * fsync'd and renamed over `path`, then the directory is fsync'd so the rename survives a power cut.
 * A crash at any point leaves the old file or the new one, never a torn one. `mode` applies to a new
 * file (0600 by default: the agent's files are its own).
 */
export async function writeFileDurably(path: string, content: string | Buffer, mode = 0o600): Promise<void> {
  const temporary = `${path}.tmp`;
  try {
    const handle = await open(temporary, 'w', mode);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** fsyncs a directory, so that a file created, renamed or removed in it stays so after a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The error code of a failed file operation (`ENOENT`, `EACCES`…), if it has one. */
export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
