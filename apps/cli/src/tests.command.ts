import { extname } from 'node:path';
import { Command, Option } from 'commander';
import { TAG } from '@wsmon/contracts';
import { ApiError, apiClientFrom, withServerOptions, type ApiClient, type ServerFlags } from './api-client';
import { CommandError, EXIT, UsageError, type CliIo } from './cli-io';
import { parseDuration } from './duration';
import { junitReport, type RunCase, type RunOutcome } from './junit';
import { renderTable, formatMs } from './table';
import { planApply, planCounts, renderPlan, serverTestInput, type ServerTest } from './test-plan';
import { formatTestsFile, parseTestsFile, withoutDefaults, type FileTest } from './tests-file';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A test as `GET /tests` lists it. */
type ServerTestResponse = ServerTest & { readonly enabled: boolean; readonly locations: string[] };

// ---------- apply ----------

interface ApplyFlags extends ServerFlags {
  readonly file: string;
  readonly prune?: boolean;
  readonly dryRun?: boolean;
}

async function readTestsFile(path: string, io: CliIo): Promise<string> {
  try {
    return path === '-' ? await io.readStdin() : await io.readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    throw new UsageError(`-f: cannot read ${path}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
}

/** The file's tests that name a location the control plane does not have: applying them would fail half-way. */
function missingLocations(tests: readonly FileTest[], known: ReadonlySet<string>): string[] {
  return tests.flatMap(({ test, where, lineOf }) =>
    test.locations.flatMap((name, i) => {
      if (known.has(name)) return [];
      const line = lineOf(`locations[${i}]`);
      return [
        `${where}${line === undefined ? '' : ` (line ${line})`}: locations[${i}]: no location is named ${JSON.stringify(name)} [exists]`,
      ];
    }),
  );
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

async function apply(flags: ApplyFlags, io: CliIo): Promise<void> {
  const fileName = flags.file === '-' ? 'standard input' : flags.file;
  // Everything the file says is checked before the first request.
  const tests = parseTestsFile(await readTestsFile(flags.file, io), fileName);
  const api = apiClientFrom(flags, io);
  const [server, locations] = await Promise.all([
    api.all<ServerTestResponse>('/tests'),
    api.all<{ name: string }>('/locations'),
  ]);
  const plan = planApply(tests, server, flags.prune === true);
  const blocking = [...plan.conflicts, ...missingLocations(tests, new Set(locations.map((l) => l.name)))];
  if (blocking.length) {
    throw new CommandError(`${fileName}: cannot be applied, nothing was changed:`, blocking);
  }

  const counts = planCounts(plan);
  const keptNote = plan.kept.length
    ? `${plural(plan.kept.length, 'test')} on the control plane ${plan.kept.length === 1 ? 'is' : 'are'} not in the file ` +
      `(kept; --prune deletes them): ${plan.kept.map((n) => JSON.stringify(n)).join(', ')}\n`
    : '';
  if (!plan.changes.length) {
    io.stdout.write(`No changes: ${plural(counts.unchanged, 'test')} up to date.\n${keptNote}`);
    return;
  }
  io.stdout.write(renderPlan(plan));
  const summary = `${counts.create} to create, ${counts.update} to update, ${counts.delete} to delete, ${counts.unchanged} unchanged`;
  if (flags.dryRun) {
    io.stdout.write(`Dry run: ${summary}; nothing was changed.\n${keptNote}`);
    return;
  }

  const done = { created: 0, updated: 0, deleted: 0 };
  for (const change of plan.changes) {
    try {
      switch (change.kind) {
        case 'create':
          await api.post('/tests', change.file.test);
          done.created++;
          break;
        case 'update':
          await api.put(`/tests/${change.id}`, change.file.test);
          done.updated++;
          break;
        case 'delete':
          await api.delete(`/tests/${change.id}`);
          done.deleted++;
          break;
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const where = change.kind === 'delete' ? undefined : change.file;
      if (done.created + done.updated + done.deleted > 0) {
        io.stdout.write(
          `Applied before the error: ${done.created} created, ${done.updated} updated, ${done.deleted} deleted.\n`,
        );
      }
      // The API's field errors name paths of the test: point them at the file too.
      throw error.about(
        `cannot ${change.kind} ${JSON.stringify(change.name)}${where ? ` (${where.where})` : ''}`,
        (field) => {
          const line = where?.lineOf(field.path);
          return line === undefined ? field : { ...field, message: `line ${line}: ${field.message}` };
        },
      );
    }
  }
  io.stdout.write(
    `Applied: ${done.created} created, ${done.updated} updated, ${done.deleted} deleted, ${counts.unchanged} unchanged.\n${keptNote}`,
  );
}

// ---------- export ----------

interface ExportFlags extends ServerFlags {
  readonly output?: string;
  readonly format?: 'yaml' | 'json';
}

async function exportTests(flags: ExportFlags, io: CliIo): Promise<void> {
  const format =
    flags.format ?? (flags.output && extname(flags.output).toLowerCase() === '.json' ? 'json' : 'yaml');
  const api = apiClientFrom(flags, io);
  const server = await api.all<ServerTestResponse>('/tests');
  const sorted = [...server].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1,
  );
  const tests = sorted.map((test) => {
    const input = serverTestInput(test);
    if (!input) {
      throw new CommandError(
        `test ${JSON.stringify(test.name)} (${test.id}) does not pass this CLI's schema: is the CLI older than the control plane?`,
      );
    }
    return withoutDefaults(input);
  });
  const text = formatTestsFile(tests, format);
  if (flags.output === undefined || flags.output === '-') {
    io.stdout.write(text);
    return;
  }
  await io.writeFile(flags.output, text);
  io.stderr.write(`wrote ${plural(tests.length, 'test')} to ${flags.output}\n`);
}

// ---------- run ----------

interface RunFlags extends ServerFlags {
  readonly id?: readonly string[];
  readonly tag?: readonly string[];
  readonly wait?: boolean;
  readonly timeout: string;
  readonly junit?: string;
  readonly json?: boolean;
}

/** `GET /runs/{id}` as the control plane answers it (apps/control-plane/src/results/results.service.ts). */
interface RunResponse {
  readonly id: string;
  readonly test_id: string;
  readonly done: boolean;
  readonly locations: readonly {
    readonly location: string | null;
    readonly location_id: string;
    readonly status: 'pending' | 'dispatched' | 'no_agent' | 'completed';
    readonly agent_id: string | null;
    readonly result: {
      readonly result_id: string;
      readonly success: boolean;
      readonly total_ms: number;
      readonly reason: string | null;
      readonly cause: string | null;
      readonly category: string | null;
    } | null;
  }[];
}

/** How long one poll asks the control plane to wait: short, so that progress shows location by location. */
const POLL_WAIT_S = 2;

async function selectTests(api: ApiClient, flags: RunFlags): Promise<ServerTestResponse[]> {
  if (flags.id?.length && flags.tag?.length) throw new UsageError('give --id or --tag, not both');
  if (flags.tag?.length) {
    const bad = flags.tag.find((tag) => !TAG.test(tag));
    if (bad !== undefined)
      throw new UsageError(`--tag: ${JSON.stringify(bad)} is not a tag (letters, digits and _.:/=-)`);
    const found = new Map<string, ServerTestResponse>();
    for (const tag of flags.tag)
      for (const test of await api.all<ServerTestResponse>('/tests', { tag })) found.set(test.id, test);
    if (!found.size)
      throw new UsageError(`no test has the tag ${flags.tag.map((t) => JSON.stringify(t)).join(' or ')}`);
    return [...found.values()];
  }
  if (flags.id?.length) {
    const all = await api.all<ServerTestResponse>('/tests');
    return [...new Set(flags.id)].map((key) => {
      const matches = all.filter((test) =>
        UUID.test(key) ? test.id === key.toLowerCase() : test.name === key,
      );
      if (matches.length === 1) return matches[0]!;
      throw new UsageError(
        matches.length
          ? `--id: ${matches.length} tests are named ${JSON.stringify(key)}: give one's id (${matches.map((m) => m.id).join(', ')})`
          : `--id: no test has the id or name ${JSON.stringify(key)}`,
      );
    });
  }
  const enabled = (await api.all<ServerTestResponse>('/tests', { enabled: 'true' })).filter((t) => t.enabled);
  if (!enabled.length) throw new UsageError('no enabled test to run');
  return enabled;
}

function caseOf(
  test: ServerTestResponse,
  run: RunResponse,
  row: RunResponse['locations'][number],
  final: boolean,
): RunCase | undefined {
  const base = {
    testName: test.name,
    testId: test.id,
    runId: run.id,
    location: row.location ?? row.location_id,
  };
  if (row.status === 'completed' && row.result) {
    const r = row.result;
    return {
      ...base,
      outcome: r.success ? 'passed' : 'failed',
      durationMs: r.total_ms,
      reason: r.reason,
      cause: r.cause,
      category: r.category,
      agentId: row.agent_id,
      resultId: r.result_id,
    };
  }
  if (row.status === 'no_agent') return { ...base, outcome: 'no_agent' };
  return final ? { ...base, outcome: 'timeout', agentId: row.agent_id } : undefined;
}

const OUTCOME_TEXT: Record<RunOutcome, string> = {
  passed: 'passed',
  failed: 'FAILED',
  no_agent: 'NO AGENT',
  timeout: 'TIMEOUT',
};

function describeCase(c: RunCase): string {
  const why = c.outcome === 'failed' ? [c.reason, c.cause].filter(Boolean).join(': ') : '';
  return [OUTCOME_TEXT[c.outcome], `${c.testName} @ ${c.location}`, formatMs(c.durationMs), why]
    .filter(Boolean)
    .join('  ');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runTests(flags: RunFlags, io: CliIo): Promise<void> {
  const timeoutMs = parseDuration(flags.timeout, '--timeout');
  const wait = flags.wait === true || flags.junit !== undefined;
  const api = apiClientFrom(flags, io);
  const tests = await selectTests(api, flags);
  const startedAt = new Date();
  const runs: { test: ServerTestResponse; run: RunResponse }[] = [];
  for (const test of tests) runs.push({ test, run: await api.post<RunResponse>(`/tests/${test.id}/runs`) });

  if (!wait) {
    if (flags.json) {
      io.stdout.write(
        `${JSON.stringify(
          runs.map((r) => r.run),
          null,
          2,
        )}\n`,
      );
      return;
    }
    io.stdout.write(
      renderTable(
        ['test', 'run', 'locations'],
        runs.map(({ test, run }) => [
          test.name,
          run.id,
          run.locations.map((l) => l.location ?? l.location_id).join(', '),
        ]),
      ),
    );
    return;
  }

  const deadline = startedAt.getTime() + timeoutMs;
  const total = runs.reduce((n, r) => n + r.run.locations.length, 0);
  const reported = new Set<string>();
  const live = io.stderr.isTTY === true;
  const progress = () => {
    const cases = runs.flatMap(({ test, run }) =>
      run.locations.flatMap((row) => caseOf(test, run, row, false) ?? []),
    );
    const failed = cases.filter((c) => c.outcome !== 'passed').length;
    const seconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
    return `running ${plural(runs.length, 'test')}: ${cases.length}/${total} locations done, ${failed} not passed · ${seconds}s`;
  };
  const report = () => {
    for (const { test, run } of runs) {
      for (const row of run.locations) {
        const c = caseOf(test, run, row, false);
        const key = `${run.id}/${row.location_id}`;
        if (!c || reported.has(key)) continue;
        reported.add(key);
        if (!live) io.stderr.write(`${describeCase(c)}\n`);
      }
    }
    if (live) io.stderr.write(`\r\x1b[K${progress()}`);
  };

  report();
  while (runs.some((r) => !r.run.done) && Date.now() < deadline) {
    const waitS = Math.max(0, Math.min(POLL_WAIT_S, Math.floor((deadline - Date.now()) / 1000)));
    await Promise.all(
      runs
        .filter((r) => !r.run.done)
        .map(async (r) => {
          r.run = await api.get<RunResponse>(`/runs/${r.run.id}`, { wait_s: waitS }, waitS * 1000);
        }),
    );
    report();
    if (waitS === 0) await sleep(200);
  }
  if (live) io.stderr.write('\r\x1b[K');

  const cases = runs.flatMap(({ test, run }) => run.locations.map((row) => caseOf(test, run, row, true)!));
  const durationMs = Date.now() - startedAt.getTime();
  if (flags.junit !== undefined) await io.writeFile(flags.junit, junitReport(cases, startedAt, durationMs));
  const passed = cases.length > 0 && cases.every((c) => c.outcome === 'passed');
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ passed, cases }, null, 2)}\n`);
  } else {
    io.stdout.write(
      renderTable(
        ['test', 'location', 'result', { heading: 'time', align: 'right' }, 'reason'],
        cases.map((c) => [
          c.testName,
          c.location,
          OUTCOME_TEXT[c.outcome],
          formatMs(c.durationMs),
          c.outcome === 'failed' ? [c.reason, c.cause].filter(Boolean).join(': ') : '',
        ]),
      ),
    );
    const count = (o: RunOutcome) => cases.filter((c) => c.outcome === o).length;
    io.stdout.write(
      `\n${plural(cases.length, 'run')}: ${count('passed')} passed, ${count('failed')} failed, ` +
        `${count('no_agent')} without an agent, ${count('timeout')} timed out` +
        `${flags.junit === undefined ? '' : ` · JUnit report in ${flags.junit}`}\n`,
    );
  }
  io.exitCode = passed ? EXIT.ok : EXIT.failed;
}

// ---------- the command group ----------

const collect = (value: string, previous: readonly string[] | undefined): string[] => [
  ...(previous ?? []),
  value,
];

/** `wsmon tests`: tests as code (apply, export) and on-demand runs for CI. */
export function createTestsCommand(io: CliIo): Command {
  const tests = new Command('tests').summary('tests as code, and on-demand runs for CI');

  const applyCommand = new Command('apply')
    .summary('make the control plane hold the tests of a file (idempotent)')
    .description(
      'Creates, updates and (with --prune) deletes tests so that the control plane holds exactly the ' +
        "file's tests, matched by name. The file is checked by the shared schema before any request; " +
        'a test whose normalised form (defaults applied) is unchanged is left alone, so applying a file ' +
        'twice changes nothing the second time.',
    )
    .requiredOption(
      '-f, --file <file>',
      'YAML (one test per document) or JSON (a list); "-" reads standard input',
    )
    .option('--prune', 'delete the tests the file does not name')
    .option('--dry-run', 'show what would change, change nothing')
    .action((flags: ApplyFlags) => apply(flags, io));
  withServerOptions(applyCommand).addHelpText(
    'after',
    `
File format: each test in the form POST /api/v1/tests takes; secrets as {{ secrets.NAME }}.
  ---
  name: chat gateway
  tags: [prod]
  schedule: { interval_s: 60 }
  locations: [eu-west, us-east]
  probe:
    url: wss://chat.example.com/socket
    headers: { Authorization: "Bearer {{ secrets.CHAT_TOKEN }}" }
    ping_mode: protocol

Exit codes: 0 applied (or nothing to do), 1 the control plane refused, 2 an invalid file.`,
  );

  const exportCommand = new Command('export')
    .summary('write the current tests in the format apply reads')
    .option('-o, --output <file>', 'write to a file instead of standard output (.json: JSON)')
    .addOption(
      new Option('--format <format>', 'yaml or json (default: from the file name, else yaml)').choices([
        'yaml',
        'json',
      ]),
    )
    .action((flags: ExportFlags) => exportTests(flags, io));
  withServerOptions(exportCommand);

  const runCommand = new Command('run')
    .summary('run tests now from every location; with --wait, exit 0 only when all pass')
    .option('--id <id>', "a test's id, or its exact name (repeatable)", collect)
    .option('--tag <tag>', 'the tests with this tag (repeatable: any of them)', collect)
    .option('--wait', 'wait for every location, print a summary, exit 1 unless all passed')
    .option('--timeout <duration>', 'how long --wait waits at most (90s, 5m…)', '120s')
    .option('--junit <file>', 'write a JUnit XML report (implies --wait)')
    .option('--json', 'print the outcome as JSON')
    .action((flags: RunFlags) => runTests(flags, io));
  withServerOptions(runCommand).addHelpText(
    'after',
    `
Without --id or --tag every enabled test runs. Progress goes to standard error (one live line on a
terminal, a line per location otherwise); the summary to standard output.

Exit codes: 0 every location of every test passed, 1 one failed, had no agent or timed out
(or the control plane refused), 2 bad usage.

Example (CI):
  $ WSMON_SERVER=https://wsmon.internal WSMON_API_KEY=$KEY wsmon tests run --tag smoke --wait --junit wsmon.xml`,
  );

  return tests.addCommand(applyCommand).addCommand(exportCommand).addCommand(runCommand);
}
