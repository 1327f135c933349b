import { isSecretPath, type TestInput } from '@wsmon/contracts';
import { canonicalJson, normaliseTest, TEST_FIELDS, type FileTest } from './tests-file';

/** A test as the REST API answers it (`GET /tests`): its input fields and its identity. */
export interface ServerTest extends Record<string, unknown> {
  readonly id: string;
  readonly name: string;
  readonly revision?: number;
}

/** One changed field of an update: a dotted path, and the values before and after. */
export interface FieldChange {
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
}

export type PlannedChange =
  | { readonly kind: 'create'; readonly name: string; readonly file: FileTest }
  | {
      readonly kind: 'update';
      readonly name: string;
      readonly id: string;
      readonly file: FileTest;
      readonly fields: readonly FieldChange[];
    }
  | { readonly kind: 'delete'; readonly name: string; readonly id: string };

export interface ApplyPlan {
  /** Creates, then updates, then deletes: the order they are sent in. */
  readonly changes: readonly PlannedChange[];
  /** Tests of the file that are already as the file says. */
  readonly unchanged: readonly string[];
  /** Tests on the control plane that the file does not name, kept because `--prune` was not given. */
  readonly kept: readonly string[];
  /** What makes the plan impossible (two tests on the control plane with a name the file uses). */
  readonly conflicts: readonly string[];
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The input fields of a test the API returned, validated by the shared schema as the file's are. */
export function serverTestInput(test: ServerTest): TestInput | undefined {
  const input = Object.fromEntries(TEST_FIELDS.filter((f) => test[f] !== undefined).map((f) => [f, test[f]]));
  const outcome = normaliseTest(input);
  return outcome.ok ? outcome.test : undefined;
}

/**
 * The fields that differ, as dotted paths: objects are compared key by key, lists and values whole
 * (a list of steps that changed is shown as one change).
 */
export function diffFields(before: unknown, after: unknown, path = ''): FieldChange[] {
  if (canonicalJson(before) === canonicalJson(after)) return [];
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => diffFields(before[key], after[key], path ? `${path}.${key}` : key));
  }
  return [{ path, before, after }];
}

/**
 * What `wsmon tests apply` must do to make the control plane hold the file's tests, matched by name:
 * create those it lacks, update those that differ (after both sides are normalised by the shared
 * schema, so a default spelled out or left out is no difference), and with `prune` delete the tests
 * the file does not name. Applying the same file twice plans nothing the second time.
 */
export function planApply(
  file: readonly FileTest[],
  server: readonly ServerTest[],
  prune: boolean,
): ApplyPlan {
  const byName = new Map<string, ServerTest[]>();
  for (const test of server) byName.set(test.name, [...(byName.get(test.name) ?? []), test]);
  const creates: PlannedChange[] = [];
  const updates: PlannedChange[] = [];
  const deletes: PlannedChange[] = [];
  const unchanged: string[] = [];
  const conflicts: string[] = [];
  const named = new Set<string>();

  for (const entry of file) {
    const { name } = entry.test;
    named.add(name);
    const matches = byName.get(name) ?? [];
    if (matches.length > 1) {
      conflicts.push(
        `${entry.where}: the control plane has ${matches.length} tests named ${JSON.stringify(name)} ` +
          `(${matches.map((m) => m.id).join(', ')}); apply matches tests by name: rename or delete all but one`,
      );
      continue;
    }
    const current = matches[0];
    if (!current) {
      creates.push({ kind: 'create', name, file: entry });
      continue;
    }
    // A test stored under an older schema that no longer passes is rewritten whole.
    const before = serverTestInput(current) ?? current;
    const fields = diffFields(
      Object.fromEntries(TEST_FIELDS.map((f) => [f, before[f]])),
      Object.fromEntries(TEST_FIELDS.map((f) => [f, entry.test[f]])),
    );
    if (fields.length) updates.push({ kind: 'update', name, id: current.id, file: entry, fields });
    else unchanged.push(name);
  }

  const kept: string[] = [];
  for (const test of server) {
    if (named.has(test.name)) continue;
    if (prune) deletes.push({ kind: 'delete', name: test.name, id: test.id });
    else kept.push(test.name);
  }
  return { changes: [...creates, ...updates, ...deletes], unchanged, kept, conflicts };
}

const MAX_VALUE_CHARS = 60;

function shown(value: unknown): string {
  if (value === undefined) return '(unset)';
  const text = JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

/** `probe.timeout_ms: 5000 → 10000`; values of credentials and certificates are not shown. */
export function describeChange(change: FieldChange): string {
  if (isSecretPath(change.path)) return `${change.path}: changed (value not shown)`;
  return `${change.path}: ${shown(change.before)} → ${shown(change.after)}`;
}

/** The plan as the terminal shows it: one line per test, an update's fields indented below it. */
export function renderPlan(plan: ApplyPlan): string {
  const lines: string[] = [];
  for (const change of plan.changes) {
    switch (change.kind) {
      case 'create':
        lines.push(`+ create ${JSON.stringify(change.name)}`);
        break;
      case 'update':
        lines.push(`~ update ${JSON.stringify(change.name)}`);
        for (const field of change.fields) lines.push(`    ${describeChange(field)}`);
        break;
      case 'delete':
        lines.push(`- delete ${JSON.stringify(change.name)}`);
        break;
    }
  }
  return lines.map((line) => `${line}\n`).join('');
}

/** `1 to create, 2 to update, 0 to delete, 3 unchanged`. */
export function planCounts(plan: ApplyPlan): Record<'create' | 'update' | 'delete' | 'unchanged', number> {
  const count = (kind: PlannedChange['kind']) => plan.changes.filter((c) => c.kind === kind).length;
  return {
    create: count('create'),
    update: count('update'),
    delete: count('delete'),
    unchanged: plan.unchanged.length,
  };
}
