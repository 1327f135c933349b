import { Module } from '@nestjs/common';
import { PersistenceModule } from '../database/persistence.module';
import { ResultsController, RunsController } from './results.controller';
import { ResultsService } from './results.service';

/** Results from agents, the results API and on-demand runs. */
@Module({
  imports: [PersistenceModule],
  controllers: [ResultsController, RunsController],
  providers: [ResultsService],
  exports: [ResultsService],
})
export class ResultsModule {}
