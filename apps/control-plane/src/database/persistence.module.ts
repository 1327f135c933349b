import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AgentsRepository } from '../agents/agents.repository';
import { AggregationRepository } from '../aggregation/aggregation.repository';
import { AlertsRepository } from '../alerts/alerts.repository';
import { WebhooksRepository } from '../alerts/webhooks.repository';
import { ApiKeysRepository } from '../auth/api-keys.repository';
import { LocationsRepository } from '../locations/locations.repository';
import { ResultsRepository } from '../results/results.repository';
import { SecretsRepository } from '../secrets/secrets.repository';
import { TestsRepository } from '../tests/tests.repository';
import { ENTITIES } from './data-source-options';

const REPOSITORIES = [
  LocationsRepository,
  TestsRepository,
  SecretsRepository,
  ApiKeysRepository,
  AgentsRepository,
  ResultsRepository,
  AggregationRepository,
  AlertsRepository,
  WebhooksRepository,
];

/** The only module that touches TypeORM: every domain module reads and writes through these. */
@Module({
  imports: [TypeOrmModule.forFeature(ENTITIES)],
  providers: REPOSITORIES,
  exports: REPOSITORIES,
})
export class PersistenceModule {}
