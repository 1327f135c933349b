import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AgentsController, PlacementController } from './agents/agents.controller';
import { AgentSessionsService } from './agents/agent-sessions.service';
import { AgentsService } from './agents/agents.service';
import { TestCatalog } from './agents/test-catalog';
import { AggregationModule } from './aggregation/aggregation.module';
import { AlertsModule } from './alerts/alerts.module';
import { ApiKeyGuard } from './auth/api-key.guard';
import { ApiKeysController } from './auth/api-keys.controller';
import { ApiKeysService } from './auth/api-keys.service';
import { HttpExceptionFilter } from './common/http-exception.filter';
import { APP_CONFIG, type AppConfig } from './config/app-config';
import { ChangeBus, LocalChangeBus, PgChangeBus } from './database/change-bus';
import { dataSourceOptions } from './database/data-source-options';
import { PersistenceModule } from './database/persistence.module';
import { GrpcServer } from './grpc/grpc.server';
import { HealthController } from './health/health.controller';
import { AgentTokensController, LocationsController } from './locations/locations.controller';
import { LocationsService } from './locations/locations.service';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsRepository } from './metrics/metrics.repository';
import { MetricsService } from './metrics/metrics.service';
import { ResultsModule } from './results/results.module';
import { SecretCipher } from './secrets/secret-cipher';
import { SecretsController } from './secrets/secrets.controller';
import { SecretsService } from './secrets/secrets.service';
import { TestsController } from './tests/tests.controller';
import { TestsService } from './tests/tests.service';

@Module({
  imports: [PersistenceModule],
  controllers: [LocationsController, AgentTokensController],
  providers: [LocationsService],
  exports: [LocationsService],
})
export class LocationsModule {}

@Module({
  imports: [PersistenceModule],
  controllers: [TestsController],
  providers: [TestsService],
  exports: [TestsService],
})
export class TestsModule {}

@Module({
  imports: [PersistenceModule],
  controllers: [SecretsController],
  providers: [SecretsService],
  exports: [SecretsService],
})
export class SecretsModule {}

@Module({
  imports: [PersistenceModule, LocationsModule, ResultsModule],
  controllers: [AgentsController, PlacementController],
  providers: [AgentsService, TestCatalog, AgentSessionsService],
  exports: [AgentSessionsService],
})
export class AgentsModule {}

@Module({
  imports: [PersistenceModule],
  controllers: [ApiKeysController],
  providers: [ApiKeysService],
  exports: [ApiKeysService],
})
export class AuthModule {}

/** `/metrics`: the latest result of every test and location, and the control plane's own health. */
@Module({
  imports: [AgentsModule],
  controllers: [MetricsController],
  providers: [MetricsService, MetricsRepository],
})
export class MetricsModule {}

export interface AppModuleOptions {
  readonly config: AppConfig;
  readonly database: { readonly url: string; readonly embedded: boolean };
  readonly secretKey: Buffer;
}

/** Wiring only. */
@Module({})
export class AppModule {
  static register(options: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [
        TypeOrmModule.forRoot(dataSourceOptions(options.database.url, options.database.embedded)),
        PersistenceModule,
        AuthModule,
        LocationsModule,
        TestsModule,
        SecretsModule,
        AgentsModule,
        ResultsModule,
        AggregationModule,
        MetricsModule,
        AlertsModule.register(AgentsModule),
      ],
      controllers: [HealthController],
      providers: [
        { provide: APP_CONFIG, useValue: options.config },
        { provide: SecretCipher, useValue: new SecretCipher(options.secretKey) },
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_FILTER, useClass: HttpExceptionFilter },
        {
          provide: ChangeBus,
          inject: [getDataSourceToken()],
          useFactory: (dataSource: DataSource): Promise<ChangeBus> =>
            options.database.embedded
              ? Promise.resolve(new LocalChangeBus())
              : PgChangeBus.start(options.database.url, dataSource),
        },
        GrpcServer,
      ],
      exports: [APP_CONFIG, SecretCipher, ChangeBus],
    };
  }
}
