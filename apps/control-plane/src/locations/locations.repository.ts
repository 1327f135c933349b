import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, type Repository } from 'typeorm';
import type { Cursor } from '../common/pagination';
import { liveSessionSql } from '../agents/agents.repository';
import { isUuid } from '../common/validation';
import { TestLocationEntity } from '../tests/test.entity';
import { AgentTokenEntity } from './agent-token.entity';
import { LocationEntity } from './location.entity';

@Injectable()
export class LocationsRepository {
  constructor(
    @InjectRepository(LocationEntity) private readonly locations: Repository<LocationEntity>,
    @InjectRepository(AgentTokenEntity) private readonly tokens: Repository<AgentTokenEntity>,
    @InjectRepository(TestLocationEntity) private readonly testLocations: Repository<TestLocationEntity>,
  ) {}

  /** By id or by name: names are unique, and people type names. */
  findByKey(key: string): Promise<LocationEntity | null> {
    return this.locations.findOne({ where: isUuid(key) ? [{ id: key }, { name: key }] : { name: key } });
  }

  findByNames(names: readonly string[]): Promise<LocationEntity[]> {
    return names.length ? this.locations.findBy({ name: In([...names]) }) : Promise.resolve([]);
  }

  findByIds(ids: readonly string[]): Promise<LocationEntity[]> {
    return ids.length ? this.locations.findBy({ id: In([...ids]) }) : Promise.resolve([]);
  }

  list(pageSize: number, after: Cursor | undefined): Promise<LocationEntity[]> {
    const query = this.locations
      .createQueryBuilder('l')
      .orderBy('l.created_at')
      .addOrderBy('l.id')
      .take(pageSize + 1);
    if (after) query.where('(l.created_at, l.id) > (:createdAt, :id)', after);
    return query.getMany();
  }

  save(location: LocationEntity): Promise<LocationEntity> {
    return this.locations.save(location);
  }

  countTestsUsing(locationId: string): Promise<number> {
    return this.testLocations.countBy({ locationId });
  }

  async delete(id: string): Promise<void> {
    await this.locations.delete({ id });
  }

  saveToken(token: AgentTokenEntity): Promise<AgentTokenEntity> {
    return this.tokens.save(token);
  }

  findToken(id: string): Promise<AgentTokenEntity | null> {
    return isUuid(id) ? this.tokens.findOneBy({ id }) : Promise.resolve(null);
  }

  findTokenByPrefix(prefix: string): Promise<AgentTokenEntity | null> {
    return this.tokens.findOneBy({ prefix });
  }

  async touchToken(id: string): Promise<void> {
    await this.tokens.update({ id }, { lastUsedAt: () => 'now()' });
  }

  /** Of these tokens, those that no longer authenticate: revoked, expired or deleted. */
  async invalidTokenIds(ids: readonly string[]): Promise<string[]> {
    if (!ids.length) return [];
    const rows = await this.tokens.query<{ id: string }[]>(
      `SELECT u.id FROM unnest($1::uuid[]) AS u (id)
        WHERE NOT EXISTS (SELECT FROM agent_tokens t
                           WHERE t.id = u.id AND t.revoked_at IS NULL
                             AND (t.expires_at IS NULL OR t.expires_at > now()))`,
      [ids],
    );
    return rows.map((r) => r.id);
  }

  /** Connected agents of a location and their capacity, from their last flushed heartbeats. */
  async agentCapacity(
    locationId: string,
    livenessMs: number,
  ): Promise<{ connected: number; freeSlots: number; inFlight: number; reporting: number }> {
    const [row] = await this.tokens.query<
      { connected: string; free_slots: string; in_flight: string; reporting: string }[]
    >(
      `SELECT count(*) AS connected, coalesce(sum(free_slots), 0) AS free_slots,
              coalesce(sum(in_flight), 0) AS in_flight, count(free_slots) AS reporting
         FROM agents a
        WHERE a.location_id = $1 AND ${liveSessionSql('a', '$2')}`,
      [locationId, livenessMs],
    );
    return {
      connected: Number(row!.connected),
      freeSlots: Number(row!.free_slots),
      inFlight: Number(row!.in_flight),
      reporting: Number(row!.reporting),
    };
  }

  listTokens(locationId: string): Promise<AgentTokenEntity[]> {
    return this.tokens.find({ where: { locationId }, order: { createdAt: 'ASC', id: 'ASC' } });
  }
}
