import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { secretInputSchema } from '@wsmon/contracts';
import { RequireRole } from '../auth/roles';
import { openApiSchema } from '../common/openapi';
import { SecretsService } from './secrets.service';

@ApiTags('secrets')
@ApiBearerAuth()
@Controller('secrets')
export class SecretsController {
  constructor(private readonly secrets: SecretsService) {}

  @Post()
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Create a secret; reference it as {{ secrets.NAME }} in headers, cookies and messages',
  })
  @ApiBody({ schema: openApiSchema(secretInputSchema) })
  create(@Body() body: unknown) {
    return this.secrets.create(body);
  }

  @Put(':name')
  @RequireRole('admin')
  @ApiOperation({ summary: "Change a secret's value" })
  update(@Param('name') name: string, @Body() body: unknown) {
    return this.secrets.update(name, body);
  }

  @Get()
  @RequireRole('admin')
  @ApiOperation({ summary: 'List secret names and when they changed (values are never returned)' })
  list() {
    return this.secrets.list();
  }

  @Delete(':name')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiOperation({ summary: 'Delete a secret; 409 while tests reference it' })
  delete(@Param('name') name: string) {
    return this.secrets.delete(name);
  }
}
