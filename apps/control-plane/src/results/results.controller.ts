import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentApiKey, type AuthenticatedKey } from '../auth/current-api-key';
import { RequireRole } from '../auth/roles';
import { ResultsService } from './results.service';

@ApiTags('results')
@ApiBearerAuth()
@Controller('tests')
export class ResultsController {
  constructor(private readonly results: ResultsService) {}

  @Get(':id/results')
  @RequireRole('viewer')
  @ApiOperation({
    summary:
      "A test's results, newest first: from, to (RFC 3339; default the last 24 h), location, agent, " +
      'outcome (success|failure), page_size, page_token',
  })
  list(@Param('id') id: string, @Query() query: Record<string, string>) {
    return this.results.list(id, query);
  }

  @Post(':id/runs')
  @HttpCode(202)
  @RequireRole('editor')
  @ApiOperation({
    summary: 'Run a test now from each of its locations; GET /runs/{id} follows the run',
  })
  createRun(@Param('id') id: string, @CurrentApiKey() key: AuthenticatedKey | undefined) {
    return this.results.createRun(id, key?.id ?? null);
  }
}

@ApiTags('results')
@ApiBearerAuth()
@Controller('runs')
export class RunsController {
  constructor(private readonly results: ResultsService) {}

  @Get(':id')
  @RequireRole('viewer')
  @ApiOperation({
    summary:
      "An on-demand run: each location's status and result. wait_s (0 to 60) waits until every " +
      'location has completed or has no agent',
  })
  get(@Param('id') id: string, @Query() query: Record<string, string>) {
    return this.results.getRun(id, query);
  }
}
