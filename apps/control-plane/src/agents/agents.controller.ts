import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
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

  @Post(':id/drain')
  @HttpCode(202)
  @RequireRole('admin')
  @ApiOperation({
    summary:
      'Drain an agent: it leaves its location’s assignment at once, finishes its probes and hands its tests to the other agents',
  })
  drain(@Param('id') id: string) {
    return this.agents.drain(id);
  }
}

@ApiTags('agents')
@ApiBearerAuth()
@Controller('tests')
export class PlacementController {
  constructor(private readonly agents: AgentsService) {}

  @Get(':id/placement')
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'Which agent runs the test in each of its locations (null: no agent, not running)',
  })
  placement(@Param('id') id: string) {
    return this.agents.placement(id);
  }
}
