import { Command } from 'commander';
import { apiClientFrom, withServerOptions, type ServerFlags } from './api-client';
import { UsageError, type CliIo } from './cli-io';
import { parseDuration } from './duration';
import { formatMs, formatTime, renderTable } from './table';
import { findTest } from './test-lookup';

interface ResultsFlags extends ServerFlags {
  readonly since: string;
  readonly location?: string;
  readonly limit: string;
  readonly failures?: boolean;
  readonly json?: boolean;
}

/** A stored result as `GET /tests/{id}/results` answers it (the ProbeResult document left out here). */
interface ResultItem {
  readonly slot_time: string;
  readonly location: string | null;
  readonly location_id: string;
  readonly agent_id: string;
  readonly success: boolean;
  readonly open_ms: number | null;
  readonly round_trip_ms: number | null;
  readonly total_ms: number;
  readonly close_code: number | null;
  readonly reason: string | null;
  readonly cause: string | null;
  readonly attempts: number;
}

interface Page {
  readonly items: ResultItem[];
  readonly next_page_token: string | null;
}

const MAX_PAGE_SIZE = 200;

async function listResults(key: string, flags: ResultsFlags, io: CliIo): Promise<void> {
  const sinceMs = parseDuration(flags.since, '--since');
  const limit = Number(flags.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new UsageError('--limit: must be a whole number from 1 to 10000');
  }
  const api = apiClientFrom(flags, io);
  const test = await findTest(api, key);
  const items: ResultItem[] = [];
  let token: string | undefined;
  let more = false;
  do {
    const page = await api.get<Page>(`/tests/${test.id}/results`, {
      from: new Date(Date.now() - sinceMs).toISOString(),
      location: flags.location,
      outcome: flags.failures ? 'failure' : undefined,
      page_size: Math.min(MAX_PAGE_SIZE, limit - items.length),
      page_token: token,
    });
    items.push(...page.items);
    token = page.next_page_token ?? undefined;
    more = token !== undefined;
  } while (token && items.length < limit);

  if (flags.json) {
    io.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
    return;
  }
  if (!items.length) {
    io.stdout.write(`No results of ${JSON.stringify(test.name)} in the last ${flags.since}.\n`);
    return;
  }
  io.stdout.write(
    renderTable(
      [
        'slot',
        'location',
        'result',
        { heading: 'open', align: 'right' },
        { heading: 'round trip', align: 'right' },
        { heading: 'total', align: 'right' },
        'close',
        'reason',
      ],
      items.map((r) => [
        formatTime(r.slot_time),
        r.location ?? r.location_id,
        r.success ? 'ok' : 'FAILED',
        formatMs(r.open_ms),
        formatMs(r.round_trip_ms),
        formatMs(r.total_ms),
        r.close_code === null ? '' : String(r.close_code),
        [r.reason, r.cause].filter(Boolean).join(': '),
      ]),
    ),
  );
  if (more) io.stdout.write(`(the newest ${items.length}; --limit shows more)\n`);
}

/** `wsmon results <test>`: a test's latest results, newest first. */
export function createResultsCommand(io: CliIo): Command {
  const command = new Command('results')
    .summary("a test's latest results, newest first")
    .argument('<test>', "the test's name or id")
    .option('--since <duration>', 'how far back (90s, 15m, 1h, 7d)', '1h')
    .option('--location <name>', 'only results from this location')
    .option('--failures', 'only failed results')
    .option('--limit <n>', 'at most this many results', '100')
    .option('--json', 'print the results as JSON (as the API answers them)')
    .action((key: string, flags: ResultsFlags) => listResults(key, flags, io));
  return withServerOptions(command);
}
