import { Command } from 'commander';
import type { AgentItem, ListFlags } from './agents.command';
import { apiClientFrom, withServerOptions } from './api-client';
import type { CliIo } from './cli-io';
import { renderTable } from './table';

/** A location as `GET /locations` answers it. */
interface LocationItem {
  readonly name: string;
  readonly kind: string;
  readonly region: string | null;
  readonly labels: Readonly<Record<string, string>>;
}

async function listLocations(flags: ListFlags, io: CliIo): Promise<void> {
  const api = apiClientFrom(flags, io);
  const [locations, agents] = await Promise.all([
    api.all<LocationItem>('/locations'),
    api.get<AgentItem[]>('/agents'),
  ]);
  const connected = (name: string) =>
    agents.filter((a) => a.location.name === name && a.status === 'connected').length;
  const known = (name: string) => agents.filter((a) => a.location.name === name).length;
  if (flags.json) {
    const withAgents = locations.map((l) => ({
      ...l,
      agents: { connected: connected(l.name), total: known(l.name) },
    }));
    io.stdout.write(`${JSON.stringify(withAgents, null, 2)}\n`);
    return;
  }
  if (!locations.length) {
    io.stdout.write('No locations.\n');
    return;
  }
  io.stdout.write(
    renderTable(
      ['name', 'kind', 'region', { heading: 'agents', align: 'right' }, 'labels'],
      locations.map((l) => [
        l.name,
        l.kind,
        l.region ?? '',
        `${connected(l.name)}/${known(l.name)}`,
        Object.entries(l.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      ]),
    ),
  );
}

/** `wsmon locations`: the locations with their connected agents. */
export function createLocationsCommand(io: CliIo): Command {
  const command = new Command('locations')
    .summary('the locations, with their connected and known agents')
    .option('--json', 'print the locations as JSON (with agents: {connected, total})')
    .action((flags: ListFlags) => listLocations(flags, io));
  return withServerOptions(command);
}
