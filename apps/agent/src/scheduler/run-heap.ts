/** What the heap orders: by run time, then by `seq` so that equal run times keep a stable order. */
export interface HeapItem {
  runAtMs: number;
  readonly seq: number;
  /** The item's position in the heap, -1 when it is not in it. Maintained by the heap. */
  heapIndex: number;
}

/** A binary min-heap of planned runs with removal by item: O(log n) push, pop and remove. */
export class RunHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    if (item.heapIndex !== -1) throw new Error('item is already in the heap');
    item.heapIndex = this.items.length;
    this.items.push(item);
    this.up(item.heapIndex);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  remove(item: T): void {
    const index = item.heapIndex;
    if (index === -1) return;
    const last = this.items.pop();
    item.heapIndex = -1;
    if (last === undefined || last === item) return;
    this.items[index] = last;
    last.heapIndex = index;
    this.down(index);
    this.up(last.heapIndex);
  }

  clear(): void {
    for (const item of this.items) item.heapIndex = -1;
    this.items.length = 0;
  }

  private less(a: T, b: T): boolean {
    return a.runAtMs < b.runAtMs || (a.runAtMs === b.runAtMs && a.seq < b.seq);
  }

  private up(index: number): void {
    const item = this.at(index);
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = this.at(parentIndex);
      if (!this.less(item, parent)) break;
      this.place(parent, index);
      index = parentIndex;
    }
    this.place(item, index);
  }

  private down(index: number): void {
    const item = this.at(index);
    const size = this.items.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= size) break;
      const right = left + 1;
      let child = left;
      if (right < size && this.less(this.at(right), this.at(left))) child = right;
      const smallest = this.at(child);
      if (!this.less(smallest, item)) break;
      this.place(smallest, index);
      index = child;
    }
    this.place(item, index);
  }

  private place(item: T, index: number): void {
    this.items[index] = item;
    item.heapIndex = index;
  }

  private at(index: number): T {
    const item = this.items[index];
    if (item === undefined) throw new Error(`heap index ${index} out of range`);
    return item;
  }
}
