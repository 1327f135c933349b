import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/roles';
import { AgentsService } from './agents.service';

@ApiTags('agents')
@ApiBearerAuth()
@Controller('agents')
export class AgentsController {
  constructor(private readonly agents: AgentsService) {}

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ summary: 'List agents with their location and last seen time (filter: location)' })
  list(@Query('location') location?: string) {
    return this.agents.list(location);
  }

  @Get(':id')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get an agent' })
  get(@Param('id') id: string) {
    return this.agents.get(id);
  }
}
