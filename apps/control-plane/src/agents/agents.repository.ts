import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { AgentEntity } from './agent.entity';

@Injectable()
export class AgentsRepository {
  constructor(@InjectRepository(AgentEntity) private readonly agents: Repository<AgentEntity>) {}

  list(locationId: string | undefined): Promise<AgentEntity[]> {
    return this.agents.find({
      where: locationId ? { locationId } : {},
      order: { firstSeenAt: 'ASC', id: 'ASC' },
    });
  }

  find(id: string): Promise<AgentEntity | null> {
    return this.agents.findOneBy({ id });
  }
}
