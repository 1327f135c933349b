import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { agentTokenInputSchema, locationInputSchema, locationPatchSchema } from '@wsmon/contracts';
import { RequireRole } from '../auth/roles';
import { openApiSchema } from '../common/openapi';
import { LocationsService } from './locations.service';

@ApiTags('locations')
@ApiBearerAuth()
@Controller('locations')
export class LocationsController {
  constructor(private readonly locations: LocationsService) {}

  @Post()
  @RequireRole('editor')
  @ApiOperation({ summary: 'Create a location' })
  @ApiBody({ schema: openApiSchema(locationInputSchema) })
  create(@Body() body: unknown) {
    return this.locations.create(body);
  }

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ summary: 'List locations (page_size, page_token)' })
  list(@Query() query: Record<string, string>) {
    return this.locations.list(query);
  }

  @Get(':key')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get a location by id or name' })
  get(@Param('key') key: string) {
    return this.locations.get(key);
  }

  @Get(':key/capacity')
  @RequireRole('viewer')
  @ApiOperation({
    summary:
      'Connected agents and their free probe slots; under_provisioned when every agent reports none free',
  })
  capacity(@Param('key') key: string) {
    return this.locations.capacity(key);
  }

  @Patch(':key')
  @RequireRole('editor')
  @ApiOperation({ summary: 'Update a location: only the fields given change' })
  @ApiBody({ schema: openApiSchema(locationPatchSchema) })
  update(@Param('key') key: string, @Body() body: unknown) {
    return this.locations.update(key, body);
  }

  @Delete(':key')
  @HttpCode(204)
  @RequireRole('editor')
  @ApiOperation({ summary: 'Delete a location; 409 while tests use it' })
  delete(@Param('key') key: string) {
    return this.locations.delete(key);
  }

  @Post(':key/tokens')
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Create an agent token for the location; its secret is shown once, in this response',
  })
  @ApiBody({ schema: openApiSchema(agentTokenInputSchema), required: false })
  createToken(@Param('key') key: string, @Body() body: unknown) {
    return this.locations.createToken(key, body);
  }

  @Get(':key/tokens')
  @RequireRole('admin')
  @ApiOperation({ summary: "List the location's agent tokens (never their secrets)" })
  listTokens(@Param('key') key: string) {
    return this.locations.listTokens(key);
  }
}

@ApiTags('locations')
@ApiBearerAuth()
@Controller('agent-tokens')
export class AgentTokensController {
  constructor(private readonly locations: LocationsService) {}

  @Delete(':id')
  @RequireRole('admin')
  @ApiOperation({ summary: 'Revoke an agent token' })
  revoke(@Param('id') id: string) {
    return this.locations.revokeToken(id);
  }
}
