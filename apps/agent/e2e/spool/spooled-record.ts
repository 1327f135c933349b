import { createHash } from 'node:crypto';

/** A record that carries the digest of its own content, so a reader can tell it arrived intact. */
export interface SpooledRecord {
  readonly writer: number;
  readonly n: number;
  readonly slot: string;
  readonly payload: string;
  readonly digest: string;
}

/** The `n`-th record of this process: between about 100 bytes and 6 KiB, so writes span pages and segments. */
export function spooledRecord(n: number): SpooledRecord {
  const writer = process.pid;
  const slot = new Date(Date.UTC(2025, 0, 1) + n * 60_000).toISOString();
  const payload = String.fromCharCode(97 + (n % 26)).repeat(((n * 7919) % 6000) + 1);
  return { writer, n, slot, payload, digest: digestOf(writer, n, slot, payload) };
}

export function isIntact(record: SpooledRecord): boolean {
  return record.digest === digestOf(record.writer, record.n, record.slot, record.payload);
}

function digestOf(writer: number, n: number, slot: string, payload: string): string {
  return createHash('sha256').update(`${writer}/${n}/${slot}/${payload}`).digest('hex');
}
