import { Injectable } from '@nestjs/common';
import { ConflictError, NotFoundError } from '../common/errors';
import { TestsRepository } from '../tests/tests.repository';
import { AgentSessionsService } from './agent-sessions.service';
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

export interface TestPlacementResponse {
  test_id: string;
  enabled: boolean;
  locations: {
    location: string;
    location_id: string;
    /** The agent running the test there; null: the location has no agent, the test does not run there. */
    agent_id: string | null;
    running: boolean;
  }[];
}

/** Agents register themselves by connecting (the agents issue); the API reads them. */
@Injectable()
export class AgentsService {
  constructor(
    private readonly agents: AgentsRepository,
    private readonly locations: LocationsService,
    private readonly locationRows: LocationsRepository,
    private readonly sessions: AgentSessionsService,
    private readonly tests: TestsRepository,
  ) {}

  async list(locationKey: string | undefined): Promise<AgentResponse[]> {
    const location = locationKey === undefined ? undefined : await this.locations.find(locationKey);
    return this.withLocations(await this.agents.list(location?.id));
  }

  /** One agent, with the tests it runs now. */
  async get(id: string): Promise<AgentResponse & { test_ids: string[] }> {
    const agent = await this.agents.find(id);
    if (!agent) throw new NotFoundError('agent', id);
    const [response] = await this.withLocations([agent]);
    const running = response!.status === 'connected';
    return { ...response!, test_ids: running ? await this.sessions.assignedTests(id, agent.locationId) : [] };
  }

  /** Takes the agent out of its location's assignment; its tests move to the location's other agents. */
  async drain(id: string): Promise<AgentResponse> {
    if (!(await this.agents.find(id))) throw new NotFoundError('agent', id);
    const agent = await this.agents.markDraining(id);
    if (!agent) throw new ConflictError(`agent ${id} is not connected`);
    await this.sessions.requestDrain(id, agent.locationId);
    const [response] = await this.withLocations([agent]);
    return response!;
  }

  /** Which agent runs a test in each of its locations; a location without one does not run it. */
  async placement(testId: string): Promise<TestPlacementResponse> {
    const [found] = (await this.tests.find(testId)) ? await this.tests.withLocationIds([testId]) : [];
    if (!found) throw new NotFoundError('test', testId);
    const placements = await this.sessions.placements(testId, found.locationIds);
    const names = new Map(
      (await this.locationRows.findByIds(found.locationIds)).map((l) => [l.id, l.name] as const),
    );
    return {
      test_id: testId,
      enabled: found.test.enabled,
      locations: placements.map((p) => ({
        location: names.get(p.locationId) ?? '',
        location_id: p.locationId,
        agent_id: p.agentId ?? null,
        running: found.test.enabled && p.agentId !== undefined,
      })),
    };
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
