import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  agentTokenInputSchema,
  listQuerySchema,
  locationInputSchema,
  locationPatchSchema,
  type LocationKind,
} from '@wsmon/contracts';
import { agentLivenessMs } from '../agents/agents.repository';
import { mintCredential } from '../auth/credentials';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../common/errors';
import { decodeCursor, toPage, type Page } from '../common/pagination';
import { isForeignKeyViolation, isUniqueViolation } from '../common/pg-errors';
import { validated } from '../common/validation';
import { AgentTokenEntity } from './agent-token.entity';
import { LocationEntity } from './location.entity';
import { LocationsRepository } from './locations.repository';

export interface LocationResponse {
  id: string;
  name: string;
  kind: LocationKind;
  region: string | null;
  labels: Record<string, string>;
  created_at: string;
  updated_at: string;
}

export interface AgentTokenResponse {
  id: string;
  location_id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  expires_at: string | null;
}

export const toLocationResponse = (l: LocationEntity): LocationResponse => ({
  id: l.id,
  name: l.name,
  kind: l.kind,
  region: l.region,
  labels: l.labels,
  created_at: l.createdAt.toISOString(),
  updated_at: l.updatedAt.toISOString(),
});

export const toAgentTokenResponse = (t: AgentTokenEntity): AgentTokenResponse => ({
  id: t.id,
  location_id: t.locationId,
  name: t.name,
  created_at: t.createdAt.toISOString(),
  last_used_at: t.lastUsedAt?.toISOString() ?? null,
  revoked_at: t.revokedAt?.toISOString() ?? null,
  expires_at: t.expiresAt?.toISOString() ?? null,
});

export interface LocationCapacityResponse {
  location: string;
  agents_connected: number;
  /** Probes the connected agents could start now, summed. */
  free_slots: number;
  in_flight: number;
  under_provisioned: boolean;
}

/** Locations and their agent tokens; REST and gRPC both call this. */
@Injectable()
export class LocationsService {
  constructor(
    private readonly repository: LocationsRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(body: unknown): Promise<LocationResponse> {
    const input = validated(locationInputSchema, body);
    const location = Object.assign(new LocationEntity(), {
      id: randomUUID(),
      name: input.name,
      kind: input.kind,
      region: input.region ?? null,
      labels: input.labels,
    });
    return toLocationResponse(await this.saveUnique(location));
  }

  async list(query: unknown): Promise<Page<LocationResponse>> {
    const { page_size, page_token } = validated(listQuerySchema, query);
    const rows = await this.repository.list(page_size, decodeCursor(page_token));
    return toPage(rows, page_size, toLocationResponse);
  }

  async get(key: string): Promise<LocationResponse> {
    return toLocationResponse(await this.find(key));
  }

  async update(key: string, body: unknown): Promise<LocationResponse> {
    const patch = validated(locationPatchSchema, body);
    const location = await this.find(key);
    if (patch.name !== undefined && patch.name !== location.name) {
      // Tests refer to locations by name; renaming one under them would silently detach them.
      if ((await this.repository.countTestsUsing(location.id)) > 0) {
        throw new ConflictError(`location ${location.name} is used by tests and cannot be renamed`);
      }
      location.name = patch.name;
    }
    if (patch.kind !== undefined) location.kind = patch.kind;
    if (patch.region !== undefined) location.region = patch.region;
    if (patch.labels !== undefined) location.labels = patch.labels;
    return toLocationResponse(await this.saveUnique(location));
  }

  async delete(key: string): Promise<void> {
    const location = await this.find(key);
    const inUse = await this.repository.countTestsUsing(location.id);
    if (inUse > 0) throw new ConflictError(`location ${location.name} is used by ${inUse} test(s)`);
    try {
      await this.repository.delete(location.id);
    } catch (error) {
      if (isForeignKeyViolation(error)) throw new ConflictError(`location ${location.name} is used by tests`);
      throw error;
    }
  }

  async createToken(key: string, body: unknown): Promise<{ token: AgentTokenResponse; secret: string }> {
    const input = validated(agentTokenInputSchema, body);
    const location = await this.find(key);
    const minted = mintCredential('wsa');
    const token = await this.repository.saveToken(
      Object.assign(new AgentTokenEntity(), {
        id: randomUUID(),
        locationId: location.id,
        name: input.name,
        prefix: minted.prefix,
        secretHash: minted.secretHash,
        lastUsedAt: null,
        revokedAt: null,
        expiresAt: input.expires_at === undefined ? null : new Date(input.expires_at),
      }),
    );
    return { token: toAgentTokenResponse(token), secret: minted.token };
  }

  /**
   * The location's capacity: connected agents and their free probe slots. Under-provisioned when it
   * has agents and every one reports no free slot (probes queue up); without agents its tests do not run.
   */
  async capacity(key: string): Promise<LocationCapacityResponse> {
    const location = await this.find(key);
    const c = await this.repository.agentCapacity(location.id, agentLivenessMs(this.config.agentHeartbeatMs));
    return {
      location: location.name,
      agents_connected: c.connected,
      free_slots: c.freeSlots,
      in_flight: c.inFlight,
      under_provisioned: c.reporting > 0 && c.freeSlots === 0,
    };
  }

  async listTokens(key: string): Promise<AgentTokenResponse[]> {
    const location = await this.find(key);
    return (await this.repository.listTokens(location.id)).map(toAgentTokenResponse);
  }

  async revokeToken(id: string): Promise<AgentTokenResponse> {
    const token = await this.repository.findToken(id);
    if (!token) throw new NotFoundError('agent token', id);
    token.revokedAt ??= new Date();
    return toAgentTokenResponse(await this.repository.saveToken(token));
  }

  async find(key: string): Promise<LocationEntity> {
    const location = await this.repository.findByKey(key);
    if (!location) throw new NotFoundError('location', key);
    return location;
  }

  private async saveUnique(location: LocationEntity): Promise<LocationEntity> {
    try {
      return await this.repository.save(location);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new AlreadyExistsError(`a location named ${location.name} already exists`);
      throw error;
    }
  }
}
