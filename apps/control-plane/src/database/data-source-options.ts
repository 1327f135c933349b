import { Client } from 'pg';
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
    extra: embedded ? { max: 1 } : { max: 10, Client: SessionClient },
  };
}

/**
 * A connection of the pool (pg-pool takes its client class as `Client`) whose session runs without
 * PostgreSQL's JIT. The control plane's statements are short: compiling one costs about 10 ms, more than
 * it ever saved, and the planner's estimates decide at random which of two alike summaries pays it (it
 * was most of their 99th percentile). A SET after connecting, not the `options` startup parameter, which
 * PgBouncer refuses unless told to ignore it.
 */
class SessionClient extends Client {
  override connect(): Promise<Client>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<Client> | void {
    if (!callback) {
      return new Promise((resolve, reject) =>
        this.connect((error: Error | null) => (error ? reject(error) : resolve(this))),
      );
    }
    const done = callback as (error: Error | null, client?: Client) => void;
    super.connect((error: Error | null) => {
      if (error) return done(error);
      super.query('SET jit = off').then(
        () => done(null, this),
        (failed: Error) => done(failed),
      );
    });
  }
}

type ConnectCallback = ((error: Error) => void) | ((error: null, client: Client) => void);
