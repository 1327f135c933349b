import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTargetZoo, type TargetZoo } from '@wsmon/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkAssignment, type HeldTest } from '../config/test-assignment';
import type { ResultRecord } from '../results/result-record';
import { assignment } from '../session/scripted-control-plane.spec-helper';
import { ResultSpool } from '../spool/result-spool';
import { ProbeRunner } from './probe-runner';

let zoo: TargetZoo;
let dir: string;
let spool: ResultSpool<ResultRecord>;

beforeAll(async () => {
  zoo = await startTargetZoo();
});

afterAll(async () => {
  await zoo.close();
});

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wsmon-runner-'));
  spool = await ResultSpool.open<ResultRecord>(dir, { maxBytes: 4 * 1024 * 1024, syncIntervalMs: 0 });
});

afterEach(async () => {
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
});

function heldTest(url: string, overrides: Parameters<typeof assignment>[0] = {}): HeldTest {
  const checked = checkAssignment(assignment({ probe: { url, timeout_ms: 5000 }, ...overrides }));
  if (!checked.ok) throw new Error(checked.rejection.message);
  return checked.test;
}

async function recorded(): Promise<ResultRecord[]> {
  await spool.sync();
  return (await spool.read(0, 100)).map((entry) => entry.record);
}

describe(ProbeRunner.name, () => {
  it('records a scheduled run with its slot, attempts and the whole result', async () => {
    const runner = new ProbeRunner({ spool, concurrency: 4, newId: () => 'result-1' });
    const test = heldTest(zoo.url('/echo'), { test_id: 'echo', revision: 3, name: 'echo test' });
    await runner.runScheduled(test, 1_700_000_000_000, new AbortController().signal);

    const [record] = await recorded();
    expect(record).toMatchObject({
      result_id: 'result-1',
      test_id: 'echo',
      test_revision: 3,
      slot_ms: 1_700_000_000_000,
      attempts: 1,
      success: true,
      reason: '',
      close_code: 1000,
    });
    expect(record).not.toHaveProperty('run_id');
    expect(JSON.parse(record!.result_json)).toMatchObject({ success: true, url: zoo.url('/echo') });
    expect(runner.lastResultsOf()).toEqual([
      expect.objectContaining({ testId: 'echo', name: 'echo test', success: true }),
    ]);
    expect(runner.runCounts()).toContainEqual({ kind: 'scheduled', outcome: 'success', count: 1 });
  });

  it('runs RunNow with its retry policy, and answers an invalid probe with an invalid_config result', async () => {
    const runner = new ProbeRunner({ spool, concurrency: 4 });
    runner.runOnDemand(
      'run-1',
      assignment({ test_id: 'refused', probe: { url: zoo.refusedUrl }, retry: { attempts: 1, delay_ms: 0 } }),
    );
    runner.runOnDemand(
      'run-2',
      assignment({
        test_id: 'broken',
        probe: { url: 'http://127.0.0.1/', headers: { 'X-Key': 'secret-abc-123' } },
      }),
    );
    await runner.settle(5000);

    const records = await recorded();
    const byRun = new Map(records.map((r) => [r.run_id, r]));
    expect(byRun.get('run-1')).toMatchObject({
      test_id: 'refused',
      attempts: 2,
      success: false,
      reason: 'ws_open_failed',
    });
    const invalid = byRun.get('run-2')!;
    expect(invalid).toMatchObject({
      test_id: 'broken',
      success: false,
      reason: 'invalid_config',
      category: 'INVALID_REQUEST',
    });
    expect(invalid.result_json).toContain('probe.url: must start with ws:// or wss://');
    expect(invalid.result_json).not.toContain('secret-abc-123');
    expect(invalid.slot_ms).toBe(invalid.started_ms);
  });

  it('counts scheduled and on-demand runs in flight, and abandons those a settle outlasts', async () => {
    const runner = new ProbeRunner({ spool, concurrency: 5 });
    const slow = zoo.url('/slow-handshake?delay_ms=3000');
    const scheduled = runner.runScheduled(
      heldTest(slow, { test_id: 'slow' }),
      Date.now(),
      new AbortController().signal,
    );
    runner.runOnDemand(
      'run-slow',
      assignment({ test_id: 'slow-now', probe: { url: slow, timeout_ms: 5000 } }),
    );
    expect({ inFlight: runner.inFlight, freeSlots: runner.freeSlots }).toEqual({ inFlight: 2, freeSlots: 3 });

    expect(await runner.settle(50)).toEqual({ finished: 0, abandoned: 2 });
    await scheduled;
    expect(runner.inFlight).toBe(0);
    expect(await recorded()).toEqual([]);
    expect(runner.runCounts()).toEqual(
      expect.arrayContaining([
        { kind: 'scheduled', outcome: 'abandoned', count: 1 },
        { kind: 'on_demand', outcome: 'abandoned', count: 1 },
      ]),
    );
  });
});
