import { describe, expect, it } from 'vitest';
import { describeChange, diffFields, planApply, planCounts, renderPlan, type ServerTest } from './test-plan';
import { parseTestsFile, type FileTest } from './tests-file';

function fileOf(...tests: Record<string, unknown>[]): FileTest[] {
  return parseTestsFile(tests.map((t) => JSON.stringify(t)).join('\n---\n'), 'tests.yaml');
}

const test = (name: string, probe: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  name,
  schedule: { interval_s: 60 },
  locations: ['eu-west'],
  probe: { url: 'wss://a.example.com/ws', ...probe },
  ...extra,
});

/** A test as the API returns it: normalised (every default spelled out), with an id. */
function onServer(id: string, input: Record<string, unknown>): ServerTest {
  const [parsed] = fileOf(input);
  return { id, revision: 1, created_at: '2025-01-01T00:00:00Z', ...parsed!.test };
}

describe(planApply.name, () => {
  it('creates what the control plane lacks, and plans nothing once it holds the same', () => {
    const file = fileOf(test('a'), test('b'));
    const first = planApply(file, [], false);
    expect(first.changes.map((c) => `${c.kind} ${c.name}`)).toEqual(['create a', 'create b']);
    const second = planApply(file, [onServer('1', test('a')), onServer('2', test('b'))], false);
    expect(second.changes).toEqual([]);
    expect(second.unchanged).toEqual(['a', 'b']);
  });

  it('sees no difference between a default left out and spelled out', () => {
    const file = fileOf(test('a', { timeout_ms: 10_000, headers: {} }, { enabled: true, tags: [] }));
    expect(planApply(file, [onServer('1', test('a'))], false).changes).toEqual([]);
  });

  it('updates what differs, naming each changed field', () => {
    const file = fileOf(test('a', { timeout_ms: 5000 }, { tags: ['prod'] }));
    const plan = planApply(file, [onServer('1', test('a'))], false);
    expect(plan.changes).toHaveLength(1);
    const [change] = plan.changes;
    expect(change?.kind === 'update' && change.fields.map(describeChange)).toEqual([
      'probe.timeout_ms: 10000 → 5000',
      'tags: [] → ["prod"]',
    ]);
  });

  it('keeps tests the file does not name, and deletes them with prune', () => {
    const file = fileOf(test('a'));
    const server = [onServer('1', test('a')), onServer('2', test('gone'))];
    const kept = planApply(file, server, false);
    expect(kept.changes).toEqual([]);
    expect(kept.kept).toEqual(['gone']);
    const pruned = planApply(file, server, true);
    expect(pruned.changes).toEqual([{ kind: 'delete', name: 'gone', id: '2' }]);
    expect(pruned.kept).toEqual([]);
  });

  it('orders creates, then updates, then deletes, and counts them', () => {
    const file = fileOf(test('changed', { timeout_ms: 2000 }), test('new'));
    const server = [onServer('1', test('changed')), onServer('2', test('old'))];
    const plan = planApply(file, server, true);
    expect(plan.changes.map((c) => c.kind)).toEqual(['create', 'update', 'delete']);
    expect(planCounts(plan)).toEqual({ create: 1, update: 1, delete: 1, unchanged: 0 });
    expect(renderPlan(plan)).toBe(
      '+ create "new"\n~ update "changed"\n    probe.timeout_ms: 10000 → 2000\n- delete "old"\n',
    );
  });

  it('refuses to guess between two tests of the control plane with a name the file uses', () => {
    const plan = planApply(
      fileOf(test('twin')),
      [onServer('1', test('twin')), onServer('2', test('twin'))],
      false,
    );
    expect(plan.changes).toEqual([]);
    expect(plan.conflicts).toEqual([
      'document 1: the control plane has 2 tests named "twin" (1, 2); apply matches tests by name: rename or delete all but one',
    ]);
  });
});

describe(describeChange.name, () => {
  it('never shows the values of headers, credentials or certificates', () => {
    const changes = diffFields(
      { probe: { headers: { Authorization: 'Bearer old-secret' }, basic_auth: { password: 'p1' } } },
      { probe: { headers: { Authorization: 'Bearer new-secret' }, basic_auth: { password: 'p2' } } },
    ).map(describeChange);
    expect(changes).toEqual([
      'probe.basic_auth.password: changed (value not shown)',
      'probe.headers.Authorization: changed (value not shown)',
    ]);
  });

  it('shows a field that appears or disappears as unset on one side, and shortens long values', () => {
    expect(describeChange({ path: 'description', before: undefined, after: 'x' })).toBe(
      'description: (unset) → "x"',
    );
    expect(describeChange({ path: 'description', before: 'a'.repeat(100), after: '' })).toMatch(
      /^description: "a{58}… → ""$/,
    );
  });
});
