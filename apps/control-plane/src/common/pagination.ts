import { invalid } from './errors';

/** A position in a list ordered by (created_at, id): stable while rows are added. */
export interface Cursor {
  readonly createdAt: Date;
  readonly id: string;
}

export interface Page<T> {
  readonly items: T[];
  readonly next_page_token: string | null;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.toISOString(), cursor.id])).toString('base64url');
}

export function decodeCursor(token: string | undefined): Cursor | undefined {
  if (token === undefined) return undefined;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    if (typeof id !== 'string' || Number.isNaN(date.getTime())) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw invalid('page_token', 'page_token', 'is not a token this API returned');
  }
}

/** Fetch one row more than the page holds: its presence says whether there is a next page. */
export function toPage<R extends { createdAt: Date; id: string }, T>(
  rows: R[],
  pageSize: number,
  map: (row: R) => T,
): Page<T> {
  const items = rows.slice(0, pageSize);
  const last = items[items.length - 1];
  return {
    items: items.map(map),
    next_page_token: rows.length > pageSize && last ? encodeCursor(last) : null,
  };
}
