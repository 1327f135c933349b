/**
 * The JSON path subset of probe configurations: `$`, then any number of `.name`, `['name']` (or
 * `["name"]`) and `[index]` segments, such as `$.data.user.id`, `$[0].ok` or `$['x-request-id']`.
 * No wildcards, filters or recursive descent: a path names at most one value, so an assertion on it
 * has one actual value to show.
 */
export type JsonPathSegment = string | number;

const NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*/;
const INDEX = /^\[(\d{1,9})\]/;
const QUOTED = /^\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]/;

/** The segments of a path, or the reason it is not one of the subset. */
export function parseJsonPath(
  path: string,
): { ok: true; segments: JsonPathSegment[] } | { ok: false; problem: string } {
  if (!path.startsWith('$')) return { ok: false, problem: 'must start with $ (such as $.data.id)' };
  const segments: JsonPathSegment[] = [];
  let rest = path.slice(1);
  while (rest.length > 0) {
    if (rest.startsWith('.')) {
      const name = NAME.exec(rest.slice(1));
      if (!name) return { ok: false, problem: `expected a field name after "." at "${rest}"` };
      segments.push(name[0]);
      rest = rest.slice(1 + name[0].length);
      continue;
    }
    const index = INDEX.exec(rest);
    if (index) {
      segments.push(Number(index[1]));
      rest = rest.slice(index[0].length);
      continue;
    }
    const quoted = QUOTED.exec(rest);
    if (quoted) {
      segments.push((quoted[1] ?? quoted[2] ?? '').replace(/\\(.)/g, '$1'));
      rest = rest.slice(quoted[0].length);
      continue;
    }
    return { ok: false, problem: `expected .name, [index] or ['name'] at "${rest}"` };
  }
  return { ok: true, segments };
}

/** What a path selects in a parsed JSON value: `found` is false where some segment is missing. */
export function selectJsonPath(
  value: unknown,
  segments: readonly JsonPathSegment[],
): { found: true; value: unknown } | { found: false } {
  let current = value;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      if (!Array.isArray(current) || segment >= current.length) return { found: false };
      current = current[segment] as unknown;
    } else {
      if (typeof current !== 'object' || current === null || Array.isArray(current)) return { found: false };
      if (!Object.hasOwn(current, segment)) return { found: false };
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return { found: true, value: current };
}
