import type { DataSourceOptions } from 'typeorm';
import { AlertEntity, LocationStatusEntity } from '../alerts/alert.entity';
import { WebhookDeliveryAttemptEntity, WebhookDeliveryEntity, WebhookEntity } from '../alerts/webhook.entity';
import { AgentEntity } from '../agents/agent.entity';
import { AGGREGATION_ENTITIES } from '../aggregation/rollup.entity';
import { ApiKeyEntity } from '../auth/api-key.entity';
import { AgentTokenEntity } from '../locations/agent-token.entity';
import { LocationEntity } from '../locations/location.entity';
import { ResultEntity } from '../results/result.entity';
import { RunEntity, RunResultEntity } from '../results/run.entity';
import { SecretEntity } from '../secrets/secret.entity';
import { TestEntity, TestLocationEntity } from '../tests/test.entity';
import { InitialSchema1763701200000 } from './migrations/1763701200000-InitialSchema';
import { AgentSessions1763784000000 } from './migrations/1763784000000-AgentSessions';
import { Results1763870400000 } from './migrations/1763870400000-Results';
import { Aggregation1763956800000 } from './migrations/1763956800000-Aggregation';
import { Alerts1764043200000 } from './migrations/1764043200000-Alerts';
import { ResultsOneIndex1764129600000 } from './migrations/1764129600000-ResultsOneIndex';

export const ENTITIES = [
  LocationEntity,
  AgentTokenEntity,
  AgentEntity,
  TestEntity,
  TestLocationEntity,
  SecretEntity,
  ApiKeyEntity,
  ResultEntity,
  RunEntity,
  RunResultEntity,
  LocationStatusEntity,
  AlertEntity,
  WebhookEntity,
  WebhookDeliveryEntity,
  WebhookDeliveryAttemptEntity,
  ...AGGREGATION_ENTITIES,
];
export const MIGRATIONS = [
  InitialSchema1763701200000,
  AgentSessions1763784000000,
  Results1763870400000,
  Aggregation1763956800000,
  Alerts1764043200000,
  ResultsOneIndex1764129600000,
];

/**
 * TypeORM options for a PostgreSQL URL. Migrations run at start, never `synchronize`. The
 * embedded database is one session, so it gets a pool of exactly one connection.
 */
export function dataSourceOptions(url: string, embedded: boolean): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsRun: true,
    migrationsTransactionMode: 'each',
    synchronize: false,
    extra: { max: embedded ? 1 : 10 },
  };
}
