import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { apiKeyInputSchema } from '@wsmon/contracts';
import { openApiSchema } from '../common/openapi';
import { ApiKeysService } from './api-keys.service';
import { RequireRole } from './roles';

@ApiTags('api-keys')
@ApiBearerAuth()
@Controller('api-keys')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @RequireRole('admin')
  @ApiOperation({ summary: 'Create an API key with a role; the key is shown once, in this response' })
  @ApiBody({ schema: openApiSchema(apiKeyInputSchema) })
  create(@Body() body: unknown) {
    return this.apiKeys.create(body);
  }

  @Get()
  @RequireRole('admin')
  @ApiOperation({ summary: 'List API keys (never the keys themselves)' })
  list() {
    return this.apiKeys.list();
  }

  @Delete(':id')
  @RequireRole('admin')
  @ApiOperation({ summary: 'Revoke an API key; the last admin key cannot be revoked' })
  revoke(@Param('id') id: string) {
    return this.apiKeys.revoke(id);
  }
}
