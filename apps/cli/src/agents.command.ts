import { Command } from 'commander';
import { apiClientFrom, withServerOptions, type ServerFlags } from './api-client';
import type { CliIo } from './cli-io';
import { formatTime, renderTable } from './table';

export interface ListFlags extends ServerFlags {
  readonly location?: string;
  readonly json?: boolean;
}

/** An agent as `GET /agents` answers it. */
export interface AgentItem {
  readonly id: string;
  readonly location: { readonly id: string; readonly name: string };
  readonly hostname: string;
  readonly version: string;
  readonly status: 'connected' | 'drained' | 'disconnected';
  readonly last_heartbeat_at: string | null;
  readonly last_seen_at: string;
  readonly tests: number;
  readonly free_slots: number | null;
  readonly in_flight: number | null;
  readonly spool_depth: number | null;
}

const count = (n: number | null) => (n === null ? '' : String(n));

async function listAgents(flags: ListFlags, io: CliIo): Promise<void> {
  const api = apiClientFrom(flags, io);
  const agents = await api.get<AgentItem[]>('/agents', { location: flags.location });
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(agents, null, 2)}\n`);
    return;
  }
  if (!agents.length) {
    io.stdout.write(flags.location === undefined ? 'No agents.\n' : `No agents in ${flags.location}.\n`);
    return;
  }
  io.stdout.write(
    renderTable(
      [
        'id',
        'location',
        'status',
        'version',
        'hostname',
        { heading: 'tests', align: 'right' },
        { heading: 'free', align: 'right' },
        { heading: 'in flight', align: 'right' },
        { heading: 'spool', align: 'right' },
        'last seen',
      ],
      agents.map((a) => [
        a.id,
        a.location.name,
        a.status,
        a.version,
        a.hostname,
        String(a.tests),
        count(a.free_slots),
        count(a.in_flight),
        count(a.spool_depth),
        formatTime(a.last_heartbeat_at ?? a.last_seen_at),
      ]),
    ),
  );
}

/** `wsmon agents`: the agents of every location (or one), with their sessions. */
export function createAgentsCommand(io: CliIo): Command {
  const command = new Command('agents')
    .summary('the agents, their sessions and capacity')
    .option('--location <name>', 'only the agents of this location')
    .option('--json', 'print the agents as JSON (as the API answers them)')
    .action((flags: ListFlags) => listAgents(flags, io));
  return withServerOptions(command);
}
