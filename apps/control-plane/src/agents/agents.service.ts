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
    }));
  }
}
