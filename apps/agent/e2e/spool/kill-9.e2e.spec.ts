import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryLockedError } from '@wsmon/runtime';
import { spawnAckingChild, type AckingChild } from '@wsmon/testing';
import { ResultSpool, type SpoolIncident } from '../../src/spool/result-spool';
import { isIntact, type SpooledRecord } from './spooled-record';

const APPENDER = 'apps/agent/e2e/spool/appender.runner.ts';
const ROUNDS = 3;
const SPOOL = { maxBytes: 64 * 1024 * 1024, segmentBytes: 64 * 1024, syncIntervalMs: 20 };

let scratch: string;
const children = new Set<ChildProcess>();

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'wsmon-spool-kill9-'));
});

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

/** The appender child: `ACK <sequence>` once an append resolved, `ACKED <sequence>` once an acknowledge did. */
function startAppender(dir: string): AckingChild {
  return spawnAckingChild(APPENDER, { dir, ...SPOOL, acknowledge: { every: 25, lag: 60 } }, children);
}

/** Everything the spool holds, opened the way the agent opens it after a crash. */
async function contentAfterRestart(dir: string) {
  const incidents: SpoolIncident[] = [];
  const spool = await ResultSpool.open<SpooledRecord>(dir, {
    ...SPOOL,
    onIncident: (incident) => incidents.push(incident),
  });
  try {
    return { records: await spool.read(0, 1_000_000), stats: spool.stats(), incidents };
  } finally {
    await spool.close();
  }
}

describe('the result spool under kill -9', () => {
  it(`keeps every append that resolved, ${ROUNDS} crashes in a row on one directory`, async () => {
    const dir = join(scratch, 'spool');
    const acked: number[] = [];
    let acknowledged = 0;
    let lastSequence = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const appender = startAppender(dir);
      const pid = await appender.ready;
      if (round === 1) {
        // A second process on the same directory is refused, naming the owner.
        const error = await ResultSpool.open(dir, SPOOL).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DirectoryLockedError);
        expect((error as DirectoryLockedError).ownerPid).toBe(pid);
      }
      await appender.waitForAcks(300 + Math.floor(Math.random() * 500));
      appender.child.kill('SIGKILL'); // while it goes on appending: a write is usually in flight
      const { signal, stderr } = await appender.closed;
      expect(signal, stderr).toBe('SIGKILL');
      // Sequences go on from where the previous process stopped, never reused.
      expect(Math.min(...appender.acks)).toBeGreaterThan(lastSequence);
      acked.push(...appender.acks);
      acknowledged = Math.max(acknowledged, appender.last('ACKED') ?? 0);

      const { records, stats, incidents } = await contentAfterRestart(dir); // takes over the stale lock
      const sequences = records.map((entry) => entry.sequence);
      const present = new Set(sequences);
      const missing = acked.filter((sequence) => sequence > acknowledged && !present.has(sequence));
      expect(missing).toEqual([]);
      expect(sequences.every((sequence) => sequence > acknowledged)).toBe(true);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
      expect(records.filter((entry) => !isIntact(entry.record))).toEqual([]);
      expect(incidents.filter((incident) => incident.kind === 'corruption')).toEqual([]);
      expect(stats).toMatchObject({ droppedTotal: 0, corruptedTotal: 0 });
      expect(stats.lastSequence).toBeGreaterThanOrEqual(Math.max(...acked));
      lastSequence = stats.lastSequence;
    }
    expect(acknowledged).toBeGreaterThan(0);
  });
});
