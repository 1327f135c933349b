import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { PersistenceModule } from '../database/persistence.module';
import { AlertsController, StatusController } from './alerts.controller';
import { AlertsService } from './alerts.service';
import { StatusService } from './status.service';
import { DEFAULT_DELIVERY_POLICY } from './webhook-signature';
import { DELIVERY_POLICY, WebhookDispatcher } from './webhook-dispatcher.service';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';

/** Status, alerts and webhooks. */
@Module({})
export class AlertsModule {
  /** `agents`: the module that exports AgentSessionsService (which agent runs a test where). */
  static register(agents: Type | DynamicModule): DynamicModule {
    return {
      module: AlertsModule,
      imports: [PersistenceModule, agents],
      controllers: [StatusController, AlertsController, WebhooksController],
      providers: [
        StatusService,
        AlertsService,
        WebhooksService,
        WebhookDispatcher,
        { provide: DELIVERY_POLICY, useValue: DEFAULT_DELIVERY_POLICY },
      ],
      exports: [StatusService, AlertsService],
    };
  }
}
