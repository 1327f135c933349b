import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { webhookInputSchema } from '@wsmon/contracts';
import { CurrentApiKey, type AuthenticatedKey } from '../auth/current-api-key';
import { RequireRole } from '../auth/roles';
import { openApiSchema } from '../common/openapi';
import { WebhooksService } from './webhooks.service';

/**
 * Webhooks are admin-only, like secrets and agent tokens: each holds a signing secret, and its URL is
 * often a credential itself (chat tools put their token in the path).
 */
@ApiTags('webhooks')
@ApiBearerAuth()
@Controller('webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @RequireRole('admin')
  @ApiOperation({
    summary:
      'Create a webhook for alert notifications (url, secret or a generated one, tests, tags); ' +
      'the response shows the secret, this once',
  })
  @ApiBody({ schema: openApiSchema(webhookInputSchema) })
  create(@Body() body: unknown, @CurrentApiKey() key: AuthenticatedKey | undefined) {
    return this.webhooks.create(body, key?.id ?? null);
  }

  @Get()
  @RequireRole('admin')
  @ApiOperation({ summary: 'List webhooks (never their secrets): page_size, page_token' })
  list(@Query() query: Record<string, string>) {
    return this.webhooks.list(query);
  }

  @Get(':id')
  @RequireRole('admin')
  @ApiOperation({ summary: 'Get a webhook' })
  get(@Param('id') id: string) {
    return this.webhooks.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiOperation({ summary: 'Delete a webhook and its deliveries' })
  delete(@Param('id') id: string) {
    return this.webhooks.delete(id);
  }

  @Post(':id/test')
  @HttpCode(200)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Send a test notification now; answers with the delivery after its first attempt',
  })
  test(@Param('id') id: string) {
    return this.webhooks.sendTest(id);
  }

  @Get(':id/deliveries')
  @RequireRole('admin')
  @ApiOperation({
    summary: "A webhook's deliveries, newest first, with every attempt: state, page_size, page_token",
  })
  deliveries(@Param('id') id: string, @Query() query: Record<string, string>) {
    return this.webhooks.deliveries(id, query);
  }
}
