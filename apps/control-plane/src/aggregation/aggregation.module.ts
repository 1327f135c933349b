import { Module } from '@nestjs/common';
import { PersistenceModule } from '../database/persistence.module';
import { AggregationController } from './aggregation.controller';
import { AggregationService } from './aggregation.service';

/** Rollups of results by minute, hour and day, test summaries, and retention of results and rollups. */
@Module({
  imports: [PersistenceModule],
  controllers: [AggregationController],
  providers: [AggregationService],
  exports: [AggregationService],
})
export class AggregationModule {}
