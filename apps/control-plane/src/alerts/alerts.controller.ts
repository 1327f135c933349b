import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/roles';
import { AlertsService } from './alerts.service';
import { StatusService } from './status.service';

@ApiTags('status')
@ApiBearerAuth()
@Controller()
export class StatusController {
  constructor(private readonly status: StatusService) {}

  @Get('status')
  @RequireRole('viewer')
  @ApiOperation({
    summary:
      "Every test's state (ok, failing, alerting, no_data) and each location's status (healthy, unhealthy, " +
      'no_data, no_agent) with since, last_result_at, reason and cause',
  })
  list() {
    return this.status.list();
  }

  @Get('tests/:id/status')
  @RequireRole('viewer')
  @ApiOperation({ summary: "One test's state and each location's status" })
  get(@Param('id') id: string) {
    return this.status.get(id);
  }
}

@ApiTags('alerts')
@ApiBearerAuth()
@Controller('alerts')
export class AlertsController {
  constructor(private readonly alerts: AlertsService) {}

  @Get()
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'Alert events, newest first: test (id), state (open|resolved), page_size, page_token',
  })
  list(@Query() query: Record<string, string>) {
    return this.alerts.list(query);
  }
}
