import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileSlotStore, InMemorySlotStore } from './slot-store';

describe(InMemorySlotStore.name, () => {
  it('keeps the last slot of each test', async () => {
    const store = new InMemorySlotStore([['a', 1]]);
    store.recordSlot('b', 2);
    store.recordSlot('a', 3);
    store.forget('b');
    expect(store.lastSlot('a')).toBe(3);
    expect(store.lastSlot('b')).toBeUndefined();
    expect([...store.testIds()]).toEqual(['a']);
    await expect(store.flush()).resolves.toBeUndefined();
  });
});

describe(FileSlotStore.name, () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wsmon-slots-'));
    path = join(dir, 'state', 'slots.json');
  });
  afterEach(async () => {
    vi.useRealTimers();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty without a file, and a reopened store has what was flushed', async () => {
    const store = await FileSlotStore.open(path);
    expect([...store.testIds()]).toEqual([]);
    store.recordSlot('a', 1_741_082_400_000);
    store.recordSlot('b', 1_741_082_460_000);
    store.forget('b');
    await store.flush();
    const reopened = await FileSlotStore.open(path);
    expect(reopened.lastSlot('a')).toBe(1_741_082_400_000);
    expect(reopened.lastSlot('b')).toBeUndefined();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ version: 1, slots: { a: 1_741_082_400_000 } });
    expect(await readdir(join(dir, 'state'))).toEqual(['slots.json']);
  });

  it('writes at most once per writeDelayMs, after the first change', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = await FileSlotStore.open(path, { writeDelayMs: 1000 });
    for (let i = 0; i < 100; i++) store.recordSlot(`t${i}`, i);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    await expect(readFile(path, 'utf8')).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(1);
    await vi.waitFor(async () => expect((await FileSlotStore.open(path)).lastSlot('t99')).toBe(99));
    expect(vi.getTimerCount()).toBe(0);
    store.recordSlot('t0', 7);
    expect(vi.getTimerCount()).toBe(1);
    await store.flush();
    expect(vi.getTimerCount()).toBe(0);
    expect((await FileSlotStore.open(path)).lastSlot('t0')).toBe(7);
  });

  it('writes nothing when nothing changed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = await FileSlotStore.open(path);
    store.recordSlot('a', 1);
    await store.flush();
    store.recordSlot('a', 1);
    store.forget('unknown');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts empty from an unreadable file and says so', async () => {
    const errors: unknown[] = [];
    await writeFile(join(dir, 'broken.json'), '{"version":1,"slots":');
    const store = await FileSlotStore.open(join(dir, 'broken.json'), { onError: (e) => errors.push(e) });
    expect([...store.testIds()]).toEqual([]);
    expect(errors).toHaveLength(1);
    await writeFile(join(dir, 'other.json'), '{"version":2,"slots":{}}');
    await FileSlotStore.open(join(dir, 'other.json'), { onError: (e) => errors.push(e) });
    expect(errors).toHaveLength(2);
  });

  it('reports a failed write and keeps the changes for the next one', async () => {
    const store = await FileSlotStore.open(path);
    store.recordSlot('a', 1);
    await rm(join(dir, 'state'), { recursive: true });
    await expect(store.flush()).rejects.toThrow();
    await FileSlotStore.open(path);
    await store.flush();
    expect((await FileSlotStore.open(path)).lastSlot('a')).toBe(1);
  });
});
