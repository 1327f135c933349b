import { Injectable } from '@nestjs/common';
import { NotFoundError } from '../common/errors';
import { LocationsRepository } from '../locations/locations.repository';
import { LocationsService, type LocationResponse } from '../locations/locations.service';
import type { AgentEntity } from './agent.entity';
import { AgentsRepository } from './agents.repository';

export interface AgentResponse {
  id: string;
  location: Pick<LocationResponse, 'id' | 'name'>;
  hostname: string;
  version: string;
  first_seen_at: string;
  last_seen_at: string;
  /** connected: a stream is open; draining: it gave its tests up; disconnected: none is open. */
  status: 'connected' | 'drained' | 'disconnected';
  session_id: string | null;
  capabilities: string[];
  connected_at: string | null;
  disconnected_at: string | null;
  last_heartbeat_at: string | null;
  /** The configuration revision the agent last acknowledged. */
  config_revision: number;
  /** Tests it holds and runs. */
  tests: number;
  /** Probes it could start now (its concurrency limit minus probes in flight); null before its first heartbeat. */
  free_slots: number | null;
  in_flight: number | null;
  /** Results in its spool not yet acknowledged. */
  spool_depth: number | null;
  /** Results it dropped from a full spool, lost for good. */
  spool_dropped_total: number | null;
}

/** Agents register themselves by connecting (the agents issue); the API reads them. */
@Injectable()
export class AgentsService {
  constructor(
    private readonly agents: AgentsRepository,
    private readonly locations: LocationsService,
    private readonly locationRows: LocationsRepository,
  ) {}

  async list(locationKey: string | undefined): Promise<AgentResponse[]> {
    const location = locationKey === undefined ? undefined : await this.locations.find(locationKey);
    return this.withLocations(await this.agents.list(location?.id));
  }

  async get(id: string): Promise<AgentResponse> {
    const agent = await this.agents.find(id);
    if (!agent) throw new NotFoundError('agent', id);
    const [response] = await this.withLocations([agent]);
    return response!;
  }

  /** One query for all the agents' locations, however many agents. */
  private async withLocations(agents: AgentEntity[]): Promise<AgentResponse[]> {
    const locations = await this.locationRows.findByIds([...new Set(agents.map((a) => a.locationId))]);
    const nameById = new Map(locations.map((l) => [l.id, l.name]));
    return agents.map((agent) => ({
      id: agent.id,
      location: { id: agent.locationId, name: nameById.get(agent.locationId) ?? '' },
      hostname: agent.hostname,
      version: agent.version,
      first_seen_at: agent.firstSeenAt.toISOString(),
      last_seen_at: agent.lastSeenAt.toISOString(),
      status: agentStatus(agent),
      session_id: agent.sessionId,
      capabilities: agent.capabilities,
      connected_at: iso(agent.connectedAt),
      disconnected_at: iso(agent.disconnectedAt),
      last_heartbeat_at: iso(agent.lastHeartbeatAt),
      config_revision: Number(agent.configRevision),
      tests: agent.heldTests,
      free_slots: agent.freeSlots,
      in_flight: agent.inFlight,
      spool_depth: agent.spoolDepth,
      spool_dropped_total: agent.spoolDroppedTotal === null ? null : Number(agent.spoolDroppedTotal),
    }));
  }
}

const iso = (date: Date | null) => date?.toISOString() ?? null;

function agentStatus(agent: AgentEntity): AgentResponse['status'] {
  if (agent.sessionId !== null && agent.disconnectedAt === null) return 'connected';
  return agent.drained ? 'drained' : 'disconnected';
}
