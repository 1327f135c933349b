import { Command } from 'commander';
import { apiClientFrom, withServerOptions, type ServerFlags } from './api-client';
import type { CliIo } from './cli-io';
import { formatTime, renderTable } from './table';
import { findTest } from './test-lookup';

interface StatusFlags extends ServerFlags {
  readonly json?: boolean;
}

/** One test as `GET /status` and `GET /tests/{id}/status` answer it. */
interface TestStatus {
  readonly test_id: string;
  readonly test_name: string;
  readonly state: 'ok' | 'failing' | 'alerting' | 'no_data';
  readonly locations: readonly {
    readonly location: string;
    readonly status: 'healthy' | 'unhealthy' | 'no_data' | 'no_agent';
    readonly since: string;
    readonly last_result_at: string | null;
    readonly reason: string | null;
    readonly cause: string | null;
  }[];
}

/** Rows of the status table: one per test and location (a test without locations gets one row). */
export function statusRows(items: readonly TestStatus[]): string[][] {
  return items.flatMap((item) => {
    const test = [item.test_name, item.state];
    if (!item.locations.length) return [[...test, '', '', '', '', '']];
    return item.locations.map((l) => [
      ...test,
      l.location,
      l.status,
      formatTime(l.since),
      formatTime(l.last_result_at),
      [l.reason, l.cause].filter(Boolean).join(': '),
    ]);
  });
}

async function showStatus(key: string | undefined, flags: StatusFlags, io: CliIo): Promise<void> {
  const api = apiClientFrom(flags, io);
  const items =
    key === undefined
      ? (await api.get<{ items: TestStatus[] }>('/status')).items
      : [await api.get<TestStatus>(`/tests/${(await findTest(api, key)).id}/status`)];
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(key === undefined ? items : items[0], null, 2)}\n`);
    return;
  }
  if (!items.length) {
    io.stdout.write('No tests.\n');
    return;
  }
  io.stdout.write(
    renderTable(['test', 'state', 'location', 'status', 'since', 'last result', 'reason'], statusRows(items)),
  );
}

/** `wsmon status [test]`: each test's state and each location's status. */
export function createStatusCommand(io: CliIo): Command {
  const command = new Command('status')
    .summary("each test's state (ok, failing, alerting, no_data) and its locations' status")
    .argument('[test]', "one test's name or id (default: every test)")
    .option('--json', 'print the status as JSON (as the API answers it)')
    .action((key: string | undefined, flags: StatusFlags) => showStatus(key, flags, io));
  return withServerOptions(command);
}
