import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { testInputSchema, testPatchSchema } from '@wsmon/contracts';
import { RequireRole } from '../auth/roles';
import { openApiSchema } from '../common/openapi';
import { TestsService } from './tests.service';

@ApiTags('tests')
@ApiBearerAuth()
@Controller('tests')
export class TestsController {
  constructor(private readonly tests: TestsService) {}

  @Post()
  @RequireRole('editor')
  @ApiOperation({ summary: 'Create a test' })
  @ApiBody({ schema: openApiSchema(testInputSchema) })
  create(@Body() body: unknown) {
    return this.tests.create(body);
  }

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ summary: 'List tests: page_size, page_token, tag, location, enabled, q (text)' })
  list(@Query() query: Record<string, string>) {
    return this.tests.list(query);
  }

  @Get(':id')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get a test' })
  get(@Param('id') id: string) {
    return this.tests.get(id);
  }

  @Put(':id')
  @RequireRole('editor')
  @ApiOperation({ summary: 'Replace a test' })
  @ApiBody({ schema: openApiSchema(testInputSchema) })
  replace(@Param('id') id: string, @Body() body: unknown) {
    return this.tests.replace(id, body);
  }

  @Patch(':id')
  @RequireRole('editor')
  @ApiOperation({
    summary: 'Update a test: only the fields given change (probe, schedule, retry, alert whole)',
  })
  @ApiBody({ schema: openApiSchema(testPatchSchema) })
  patch(@Param('id') id: string, @Body() body: unknown) {
    return this.tests.patch(id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireRole('editor')
  @ApiOperation({ summary: 'Delete a test' })
  delete(@Param('id') id: string) {
    return this.tests.delete(id);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @RequireRole('editor')
  @ApiOperation({ summary: 'Pause a test (enabled: false)' })
  pause(@Param('id') id: string) {
    return this.tests.setEnabled(id, false);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @RequireRole('editor')
  @ApiOperation({ summary: 'Resume a test (enabled: true)' })
  resume(@Param('id') id: string) {
    return this.tests.setEnabled(id, true);
  }
}
