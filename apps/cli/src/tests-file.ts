import {
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  stringify,
  type Document,
} from 'yaml';
import { parseInput, testInputSchema, type ConfigFieldError, type TestInput } from '@wsmon/contracts';
import { UsageError } from './cli-io';

/**
 * A tests file: YAML with one test per document (`---` between them), or a document holding a list of
 * tests (the JSON form is such a list). Each test is in the form the REST API's `POST /tests` takes,
 * checked by the same shared schema; secrets stay `{{ secrets.NAME }}` references.
 */

/** A test of the file, validated and normalised (the schema's defaults applied), with where it stands. */
export interface FileTest {
  readonly test: TestInput;
  /** `document 2` or `document 1, item 3`, then ` (line 14)`: how errors name it. */
  readonly where: string;
  /** The line where the field at the path stands in the file, as close as it can be found. */
  readonly lineOf: (path: string) => number | undefined;
}

/** The fields of a test that a file holds: everything the API takes, in the order files show them. */
export const TEST_FIELDS = [
  'name',
  'description',
  'tags',
  'enabled',
  'schedule',
  'locations',
  'probe',
  'retry',
  'alert',
] as const satisfies readonly (keyof TestInput)[];

/** `probe.steps[2].timeout_ms` as `['probe', 'steps', 2, 'timeout_ms']` (`headers["X-Key"]` too). */
export function pathKeys(path: string): (string | number)[] {
  if (path === '(root)') return [];
  const keys: (string | number)[] = [];
  for (const m of path.matchAll(/([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)) {
    if (m[1] !== undefined) keys.push(m[1]);
    else if (m[2] !== undefined) keys.push(Number(m[2]));
    else keys.push(JSON.parse(m[3]!) as string);
  }
  return keys;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Validates a test with the shared schema: the normalised test, or its field errors. */
export function normaliseTest(
  input: unknown,
): { ok: true; test: TestInput } | { ok: false; errors: readonly ConfigFieldError[] } {
  const parsed = parseInput(testInputSchema, input);
  return parsed.ok ? { ok: true, test: parsed.value } : { ok: false, errors: parsed.errors };
}

/** JSON text with object keys sorted and undefined dropped: equal texts, equal tests. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isPlainObject(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * Where a field starts: the line of its key in a mapping (`probe:` rather than the first line of the
 * mapping it holds), or of the item in a list. Undefined when the field is not there.
 */
function lineOfKeyIn(
  parent: unknown,
  key: string | number,
  lineAt: (offset: number) => number,
): number | undefined {
  if (isMap(parent)) {
    const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
    const at = isNode(pair?.key) ? pair.key.range : isNode(pair?.value) ? pair.value.range : undefined;
    return at ? lineAt(at[0]) : undefined;
  }
  if (isSeq(parent) && typeof key === 'number') {
    const item: unknown = parent.items[key];
    return isNode(item) && item.range ? lineAt(item.range[0]) : undefined;
  }
  return undefined;
}

/**
 * Parses and validates a whole tests file before anything is sent. Throws one {@link UsageError}
 * listing every problem: YAML syntax, a test the schema refuses (document, line and field path), a
 * name given twice.
 */
export function parseTestsFile(text: string, fileName: string): FileTest[] {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const documents: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  // Problems are listed in file order: by document, item, then line.
  const problems: { order: [number, number, number]; text: string }[] = [];
  const lineAt = (offset: number) => Math.max(1, lineCounter.linePos(offset).line);
  const lineOfKey = (doc: Document.Parsed, parentKeys: readonly (string | number)[], key: string | number) =>
    lineOfKeyIn(parentKeys.length ? doc.getIn(parentKeys, true) : doc.contents, key, lineAt);

  const candidates: {
    value: unknown;
    where: string;
    doc: Document.Parsed;
    order: [number, number];
    prefix: number[];
  }[] = [];
  const listOnly = documents.length === 1 && Array.isArray(documents[0]?.toJS());
  documents.forEach((doc, d) => {
    const label = `document ${d + 1}`;
    if (doc.errors.length) {
      for (const error of doc.errors) {
        const line = lineAt(error.pos[0]);
        problems.push({ order: [d, 0, line], text: `${label} (line ${line}): ${error.message}` });
      }
      return;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document, such as a trailing ---
    if (Array.isArray(value)) {
      value.forEach((item, i) =>
        candidates.push({
          value: item,
          where: listOnly ? `item ${i + 1}` : `${label}, item ${i + 1}`,
          doc,
          order: [d, i],
          prefix: [i],
        }),
      );
    } else {
      candidates.push({ value, where: label, doc, order: [d, 0], prefix: [] });
    }
  });

  const tests: FileTest[] = [];
  const byName = new Map<string, string>();
  for (const { value, where, doc, order, prefix } of candidates) {
    const lineOf = (path: string): number | undefined => {
      const keys: (string | number)[] = [...prefix, ...pathKeys(path)];
      // A missing field has no node: its nearest ancestor that exists stands for it.
      for (let n = keys.length; n > 0; n--) {
        const line = lineOfKey(doc, keys.slice(0, n - 1), keys[n - 1]!);
        if (line !== undefined) return line;
      }
      const root: unknown = doc.contents;
      return isNode(root) && root.range ? lineAt(root.range[0]) : undefined;
    };
    const problem = (path: string, text: string) => {
      const line = lineOf(path);
      problems.push({
        order: [...order, line ?? 0],
        text: `${where}${line === undefined ? '' : ` (line ${line})`}${text}`,
      });
    };
    if (!isPlainObject(value)) {
      problem('(root)', ': must be a test (a mapping with name, probe, schedule, locations…)');
      continue;
    }
    const outcome = normaliseTest(value);
    if (!outcome.ok) {
      const named = typeof value.name === 'string' ? `, test ${JSON.stringify(value.name)}` : '';
      for (const error of outcome.errors) problem(error.path, `${named}: ${error.message} [${error.rule}]`);
      continue;
    }
    const first = byName.get(outcome.test.name);
    if (first !== undefined) {
      problem(
        'name',
        `: name: ${JSON.stringify(outcome.test.name)} is also the name of ${first}; apply matches tests by name [unique]`,
      );
      continue;
    }
    byName.set(outcome.test.name, where);
    tests.push({ test: outcome.test, where, lineOf });
  }
  if (problems.length) {
    problems.sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2] - b.order[2]);
    throw new UsageError(
      `${fileName}: invalid tests file, nothing was applied:`,
      problems.map((p) => p.text),
    );
  }
  return tests;
}

/**
 * The test as a file shows it: the fields in {@link TEST_FIELDS} order, and without those (at the top
 * level, and inside `probe`, `retry`, `alert`) whose value is the schema's default, so that an export
 * reads like a hand-written file. Applying the result gives back exactly `test`.
 */
export function withoutDefaults(test: TestInput): Record<string, unknown> {
  const target = canonicalJson(test);
  const same = (candidate: Record<string, unknown>) => {
    const outcome = normaliseTest(candidate);
    return outcome.ok && canonicalJson(outcome.test) === target;
  };
  const out: Record<string, unknown> = {};
  for (const field of TEST_FIELDS) if (test[field] !== undefined) out[field] = structuredClone(test[field]);
  for (const field of TEST_FIELDS) {
    if (field === 'name' || !(field in out)) continue;
    const { [field]: value, ...rest } = out;
    if (same(rest)) {
      delete out[field];
      continue;
    }
    if (!isPlainObject(value)) continue;
    for (const key of Object.keys(value)) {
      const { [key]: _dropped, ...inner } = value;
      if (same({ ...out, [field]: inner })) {
        delete value[key];
      }
    }
  }
  return out;
}

/** Tests as a file: YAML documents, or a JSON list. */
export function formatTestsFile(tests: readonly Record<string, unknown>[], format: 'yaml' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(tests, null, 2)}\n`;
  const header = '# wsmon tests: apply with `wsmon tests apply -f FILE`\n';
  return header + tests.map((test) => `---\n${stringify(test, { lineWidth: 0 })}`).join('');
}
