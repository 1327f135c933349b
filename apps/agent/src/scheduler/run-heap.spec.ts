import { describe, expect, it } from 'vitest';
import { RunHeap, type HeapItem } from './run-heap';

let seq = 0;
const item = (runAtMs: number): HeapItem => ({ runAtMs, seq: seq++, heapIndex: -1 });

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe(RunHeap.name, () => {
  it('pops in run-time order, equal run times in insertion order', () => {
    const heap = new RunHeap<HeapItem>();
    const items = [5, 1, 3, 3, 9, 0, 3].map(item);
    for (const i of items) heap.push(i);
    const popped: HeapItem[] = [];
    for (let top = heap.pop(); top !== undefined; top = heap.pop()) popped.push(top);
    const expected = [...items].sort((a, b) => a.runAtMs - b.runAtMs || a.seq - b.seq);
    expect(popped).toEqual(expected);
    expect(popped.every((i) => i.heapIndex === -1)).toBe(true);
  });

  it('stays ordered through random pushes, pops and removals', () => {
    const next = random(42);
    const heap = new RunHeap<HeapItem>();
    const inHeap = new Set<HeapItem>();
    for (let step = 0; step < 20_000; step++) {
      const r = next();
      if (r < 0.5) {
        const i = item(Math.floor(next() * 1000));
        heap.push(i);
        inHeap.add(i);
      } else if (r < 0.75) {
        const top = heap.pop();
        if (top !== undefined) {
          const least = Math.min(...[...inHeap].map((i) => i.runAtMs));
          expect(top.runAtMs).toBe(least);
          inHeap.delete(top);
        }
      } else if (inHeap.size > 0) {
        const victims = [...inHeap];
        const victim = victims[Math.floor(next() * victims.length)]!;
        heap.remove(victim);
        inHeap.delete(victim);
        expect(victim.heapIndex).toBe(-1);
      }
      expect(heap.size).toBe(inHeap.size);
    }
  });

  it('ignores removing an item it does not hold, refuses pushing one twice, and clears', () => {
    const heap = new RunHeap<HeapItem>();
    const a = item(1);
    heap.remove(a);
    heap.push(a);
    expect(() => heap.push(a)).toThrow();
    heap.push(item(2));
    heap.clear();
    expect(heap.size).toBe(0);
    expect(a.heapIndex).toBe(-1);
    expect(heap.peek()).toBeUndefined();
  });
});
