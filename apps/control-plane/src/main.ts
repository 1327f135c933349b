import 'reflect-metadata';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { ApiKeysService } from './auth/api-keys.service';
import { GrpcServer } from './grpc/grpc.server';
import { ConfigError, loadAppConfig } from './config/app-config';
import {
  EmbeddedPostgresLockedError,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from './database/embedded-postgres';
import { startLocalAgent, type LocalAgent } from './local-agent';
import { migrateExclusively } from './database/migrate';
import { resolveSecretKey } from './secrets/secret-key';

/** Bootstrap only: configuration, database, HTTP, shutdown. */
async function main(): Promise<void> {
  const logger = new Logger('wsmon');
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const config = loadAppConfig();
  const secretKey = await resolveSecretKey(config);
  let embedded: EmbeddedPostgres | undefined;
  if (!config.databaseUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: join(config.dataDir, 'pg') });
    say(`embedded PostgreSQL ${embedded.serverVersion} in ${embedded.dataDir}`);
  }
  const database = { url: config.databaseUrl ?? embedded!.url, embedded: embedded !== undefined };
  // Several replicas may start at once on one database: they migrate in turn.
  if (!embedded) await migrateExclusively(database.url);

  // Nest's start-up chatter (every route mapped) stays out of the log; warnings and errors do not.
  const app = await NestFactory.create(AppModule.register({ config, database, secretKey }), {
    logger: ['warn', 'error'],
  });
  app.setGlobalPrefix('api/v1', { exclude: ['healthz', 'readyz', 'metrics'] });
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('wsmon control plane')
      .setDescription(
        'Tests, locations, agents, secrets and API keys. Errors share one JSON shape: {error: {status, code, message, field_errors?}}.',
      )
      .setVersion('v1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs/openapi.json' });

  const bootstrap = await app.get(ApiKeysService).bootstrap(config.adminKey);
  await app.listen(config.httpPort, config.httpHost);
  const base = `http://${config.httpHost}:${config.httpPort}`;
  say(`REST API ${base}/api/v1 · OpenAPI ${base}/api/docs · health ${base}/healthz`);
  const grpcAddress = `${config.grpcHost}:${app.get(GrpcServer).port}`;
  say(`gRPC ${grpcAddress} (wsmon.v1.ConfigService, wsmon.v1.AgentService, health, reflection)`);
  if (bootstrap?.generated) {
    // Printed once, on the first start of an empty database; only its hash is stored.
    process.stdout.write(`\nadmin API key (shown once, keep it): ${bootstrap.key}\n\n`);
  }

  // Settles once the local agent (if any) is started, so that a signal during its start stops it too.
  let localAgent: Promise<LocalAgent | undefined> = Promise.resolve(undefined);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: shutting down`);
    // The agent goes first: it hands its last results over while the control plane still listens.
    void localAgent
      .then(
        (agent) => agent?.stop(),
        () => undefined,
      )
      .then(() => app.close())
      .then(() => embedded?.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error(error);
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  // Embedded means one machine and no operator yet: run an agent too, so something is monitored.
  if (embedded && config.localAgent) {
    const host = config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost;
    const address = (app.getHttpServer() as Server).address() as AddressInfo;
    localAgent = startLocalAgent({
      app,
      dataDir: config.dataDir,
      httpUrl: `http://${host}:${address.port}`,
      grpcAddress,
      say,
    });
    await localAgent;
  }
}

main().catch((error: unknown) => {
  // Problems an operator fixes (configuration, a data directory in use) get their message alone, exit 2.
  const operatorError = error instanceof ConfigError || error instanceof EmbeddedPostgresLockedError;
  const text = operatorError ? (error as Error).message : String((error as Error)?.stack ?? error);
  process.stderr.write(`wsmon control plane: ${text}\n`);
  process.exit(operatorError ? 2 : 1);
});
