import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/roles';
import { AggregationService } from './aggregation.service';

@ApiTags('results')
@ApiBearerAuth()
@Controller('tests')
export class AggregationController {
  constructor(private readonly aggregation: AggregationService) {}

  @Get(':id/summary')
  @RequireRole('viewer')
  @ApiOperation({
    summary:
      "A test's summary per location and over all: runs, failures, uptime, handshake and round-trip " +
      'percentiles, failure reasons, close codes, abnormal close rate, last result and a time series. ' +
      'window (5m|1h|24h|7d|30d|90d, default 24h) or from and to (RFC 3339, at most 90 days), location',
  })
  summary(@Param('id') id: string, @Query() query: Record<string, string>) {
    return this.aggregation.summary(id, query);
  }
}
