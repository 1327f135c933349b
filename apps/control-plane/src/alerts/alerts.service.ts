import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { alertListQuerySchema, type AlertResolution, type AlertResponse } from '@wsmon/contracts';
import type { EntityManager } from 'typeorm';
import { decodeCursor, encodeCursor, type Page } from '../common/pagination';
import { validated } from '../common/validation';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import type { AlertEntity, AlertLocation } from './alert.entity';
import { AlertsRepository, type StoredLocationState } from './alerts.repository';
import { alertTransition, isFailing, locationsNeeded, type LocationState } from './location-status';
import {
  alertResponse,
  failingLocations,
  StatusService,
  testStatusResponse,
  type EvaluatedTest,
} from './status.service';
import { WebhookDispatcher } from './webhook-dispatcher.service';
import type { NotificationPayload } from './webhook.entity';
import { WebhooksRepository } from './webhooks.repository';

/** What one evaluation pass did. */
export interface EvaluationOutcome {
  /** False when another replica was evaluating: this pass did nothing. */
  readonly ran: boolean;
  readonly opened: number;
  readonly resolved: number;
  readonly notifications: number;
}

/**
 * Alerting: every `WSMON_ALERT_EVALUATION_MS`, on every replica, one pass that advances every location's
 * status, stores it, opens and resolves alerts and queues their notifications, all in one transaction
 * under an advisory lock: while one replica evaluates, the others skip their turn, so nothing fires
 * twice (and the open alert of a test is unique in the database besides).
 */
@Injectable()
export class AlertsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('alerts');
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'alertEvaluationMs'>,
    private readonly repository: AlertsRepository,
    private readonly webhooks: WebhooksRepository,
    private readonly status: StatusService,
    private readonly dispatcher: WebhookDispatcher,
  ) {
    this.intervalMs = config.alertEvaluationMs;
  }

  onApplicationBootstrap(): void {
    this.scheduleNext();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.evaluate()
        .catch((error: unknown) => this.logger.warn(`alert evaluation failed: ${String(error)}`))
        .finally(() => {
          this.running = undefined;
          this.scheduleNext();
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  /** One evaluation pass (see the class). */
  async evaluate(): Promise<EvaluationOutcome> {
    // Read before the transaction: the embedded database has one connection, which the transaction holds.
    const inputs = await this.status.inputs();
    const counts = { opened: 0, resolved: 0, notifications: 0 };
    const ran = await this.repository.exclusively(async (manager) => {
      const evaluation = await this.status.evaluate(inputs, manager);
      await this.repository.saveStates(
        manager,
        evaluation.tests.flatMap((t) =>
          t.locations
            .filter((l) => !l.previous || changed(l.previous, l.state))
            .map((l): StoredLocationState => ({ ...l.state, testId: t.test.id, locationId: l.id })),
        ),
      );
      for (const evaluated of evaluation.tests) await this.decide(manager, evaluated, evaluation.now, counts);
      for (const orphan of evaluation.orphanAlerts) {
        await this.resolve(manager, orphan, 'test_deleted', orphan.locations, undefined, counts);
      }
    });
    if (counts.notifications) this.dispatcher.kick();
    return { ran, ...counts };
  }

  async list(query: unknown): Promise<Page<AlertResponse>> {
    const q = validated(alertListQuerySchema, query);
    const rows = await this.repository.listAlerts(
      { testId: q.test, state: q.state },
      q.page_size + 1,
      decodeCursor(q.page_token),
    );
    const items = rows.slice(0, q.page_size);
    const last = items.at(-1);
    return {
      items: items.map(alertResponse),
      next_page_token:
        rows.length > q.page_size && last ? encodeCursor({ createdAt: last.startedAt, id: last.id }) : null,
    };
  }

  private async decide(
    manager: EntityManager,
    evaluated: EvaluatedTest,
    now: Date,
    counts: { opened: number; resolved: number; notifications: number },
  ): Promise<void> {
    const { test, openAlert } = evaluated;
    if (!test.enabled) {
      if (openAlert)
        await this.resolve(manager, openAlert, 'test_paused', openAlert.locations, evaluated, counts);
      return;
    }
    const states = evaluated.locations.map((l) => l.state);
    const failing = failingLocations(evaluated);
    const transition = alertTransition(test.alert, states, openAlert !== undefined, now);
    if (transition === 'open') {
      const alert = await this.repository.openAlert(manager, {
        id: randomUUID(),
        testId: test.id,
        testName: test.name,
        testTags: test.tags,
        rule: test.alert,
        locations: failing,
      });
      if (!alert) return;
      counts.opened++;
      counts.notifications += await this.notify(manager, 'alert.opened', alert, evaluated);
      this.logger.log(`alert ${alert.id}: "${test.name}" is failing in ${failing.length} locations`);
    } else if (openAlert) {
      const locations = merged(openAlert.locations, failing);
      if (transition === 'resolve') {
        await this.resolve(manager, openAlert, 'recovered', locations, evaluated, counts);
      } else if (JSON.stringify(locations) !== JSON.stringify(openAlert.locations)) {
        await this.repository.updateAlertLocations(manager, openAlert.id, locations);
      }
    }
  }

  private async resolve(
    manager: EntityManager,
    alert: AlertEntity,
    resolution: AlertResolution,
    locations: readonly AlertLocation[],
    evaluated: EvaluatedTest | undefined,
    counts: { opened: number; resolved: number; notifications: number },
  ): Promise<void> {
    const resolved = await this.repository.resolveAlert(manager, alert.id, resolution, locations);
    if (!resolved) return;
    counts.resolved++;
    counts.notifications += await this.notify(manager, 'alert.resolved', resolved, evaluated);
    this.logger.log(`alert ${alert.id}: "${alert.testName}" resolved (${resolution})`);
  }

  private notify(
    manager: EntityManager,
    event: 'alert.opened' | 'alert.resolved',
    alert: AlertEntity,
    evaluated: EvaluatedTest | undefined,
  ): Promise<number> {
    const status = evaluated ? testStatusResponse(evaluated) : undefined;
    const payload: NotificationPayload = {
      event,
      test: { id: alert.testId, name: alert.testName, tags: alert.testTags },
      alert: alertResponse(alert),
      locations: status?.locations ?? [],
      message: notificationMessage(event, alert, evaluated),
    };
    return this.webhooks.enqueueAlert(manager, {
      event,
      alertId: alert.id,
      testId: alert.testId,
      testTags: alert.testTags,
      payload,
    });
  }
}

/** Whether a state differs from the stored one in anything stored. */
function changed(stored: LocationState, next: LocationState): boolean {
  const keys: (keyof LocationState)[] = [
    'status',
    'since',
    'failingSince',
    'trackedSince',
    'lastResultAt',
    'resultStatus',
    'resultSince',
    'reason',
    'cause',
  ];
  return keys.some((k) => {
    const a = stored[k];
    const b = next[k];
    return a instanceof Date && b instanceof Date ? a.getTime() !== b.getTime() : a !== b;
  });
}

/** The locations recorded while the alert was open: the current failing ones, and those that failed earlier. */
function merged(recorded: readonly AlertLocation[], current: readonly AlertLocation[]): AlertLocation[] {
  const byId = new Map(recorded.map((l) => [l.location_id, l]));
  for (const location of current) byId.set(location.location_id, location);
  return [...byId.values()].sort((a, b) => a.location.localeCompare(b.location));
}

function notificationMessage(
  event: 'alert.opened' | 'alert.resolved',
  alert: AlertEntity,
  evaluated: EvaluatedTest | undefined,
): string {
  const name = JSON.stringify(alert.testName);
  const total = evaluated?.test.locations.length;
  if (event === 'alert.opened') {
    const where = alert.locations
      .map((l) => `${l.location} (${[l.reason, l.cause].filter(Boolean).join(': ') || l.status})`)
      .join(', ');
    return `${name} is failing in ${alert.locations.length} of ${total} locations for ${alert.forMinutes} min or more: ${where}`;
  }
  if (alert.resolution === 'test_deleted') return `${name} was deleted: its alert is resolved`;
  if (alert.resolution === 'test_paused') return `${name} was paused: its alert is resolved`;
  const failingNow = evaluated?.locations.filter((l) => isFailing(l.state)).length ?? 0;
  const needed = evaluated ? locationsNeeded(evaluated.test.alert, evaluated.test.locations.length) : 0;
  return `${name} recovered: ${failingNow} of ${total} locations failing (an alert needs ${needed})`;
}
