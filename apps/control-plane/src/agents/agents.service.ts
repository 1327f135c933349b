import { Injectable } from '@nestjs/common';
import { NotFoundError } from '../common/errors';
import { LocationsService, toLocationResponse, type LocationResponse } from '../locations/locations.service';
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
  ) {}

  async list(locationKey: string | undefined): Promise<AgentResponse[]> {
    const location = locationKey === undefined ? undefined : await this.locations.find(locationKey);
    const rows = await this.agents.list(location?.id);
    return Promise.all(rows.map((agent) => this.toResponse(agent)));
  }

  async get(id: string): Promise<AgentResponse> {
    const agent = await this.agents.find(id);
    if (!agent) throw new NotFoundError('agent', id);
    return this.toResponse(agent);
  }

  private async toResponse(agent: AgentEntity): Promise<AgentResponse> {
    const location = toLocationResponse(await this.locations.find(agent.locationId));
    return {
      id: agent.id,
      location: { id: location.id, name: location.name },
      hostname: agent.hostname,
      version: agent.version,
      first_seen_at: agent.firstSeenAt.toISOString(),
      last_seen_at: agent.lastSeenAt.toISOString(),
    };
  }
}
