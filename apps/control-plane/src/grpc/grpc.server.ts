import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import {
  addHealthAndReflection,
  ConfigServiceService,
  type ConfigServiceServer,
  type HealthImplementation,
} from '@wsmon/proto';
import { AgentSessionsService } from '../agents/agent-sessions.service';
import { AGENT_SERVICE, agentGrpcHandlers, agentServiceDefinition } from '../agents/agents.grpc';
import { aggregationGrpcHandlers } from '../aggregation/aggregation.grpc';
import { AggregationService } from '../aggregation/aggregation.service';
import { alertsGrpcHandlers } from '../alerts/alerts.grpc';
import { AlertsService } from '../alerts/alerts.service';
import { StatusService } from '../alerts/status.service';
import { ApiKeysService } from '../auth/api-keys.service';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { locationsGrpcHandlers } from '../locations/locations.grpc';
import { LocationsService } from '../locations/locations.service';
import { resultsGrpcHandlers } from '../results/results.grpc';
import { ResultsService } from '../results/results.service';
import { testsGrpcHandlers } from '../tests/tests.grpc';
import { TestsService } from '../tests/tests.service';

const CONFIG_SERVICE = 'wsmon.v1.ConfigService';
/** In-flight calls get this long to finish on shutdown, then the rest are cancelled. */
const DRAIN_MS = 5000;

/** The gRPC port: ConfigService, the standard health service and server reflection. */
@Injectable()
export class GrpcServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('grpc');
  private readonly server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  private health: HealthImplementation | undefined;
  port = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly tests: TestsService,
    private readonly locations: LocationsService,
    private readonly apiKeys: ApiKeysService,
    private readonly results: ResultsService,
    private readonly sessions: AgentSessionsService,
    private readonly aggregation: AggregationService,
    private readonly status: StatusService,
    private readonly alerts: AlertsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const handlers: ConfigServiceServer = {
      ...testsGrpcHandlers(this.tests, this.apiKeys),
      ...locationsGrpcHandlers(this.locations, this.apiKeys),
      ...resultsGrpcHandlers(this.results, this.apiKeys),
      ...aggregationGrpcHandlers(this.aggregation, this.apiKeys),
      ...alertsGrpcHandlers(this.status, this.alerts, this.apiKeys),
    };
    this.server.addService(ConfigServiceService, handlers);
    this.server.addService(agentServiceDefinition, agentGrpcHandlers(this.sessions));
    this.health = addHealthAndReflection(this.server, [CONFIG_SERVICE, AGENT_SERVICE]);
    const address = `${this.config.grpcHost}:${this.config.grpcPort}`;
    // TLS terminates in front of the control plane (ingress, mesh) as is usual for gRPC services.
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    this.health?.setStatus('', 'NOT_SERVING');
    this.health?.setStatus(CONFIG_SERVICE, 'NOT_SERVING');
    this.health?.setStatus(AGENT_SERVICE, 'NOT_SERVING');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.logger.warn(`calls still running after ${DRAIN_MS} ms: cancelled`);
        this.server.forceShutdown();
        resolve();
      }, DRAIN_MS);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
