import {
  AlertState,
  LocationHealth,
  TestState,
  type Alert,
  type ConfigServiceServer,
  type TestStatus,
} from '@wsmon/proto';
import type {
  AlertResponse,
  AlertState as State,
  LocationStatus,
  TestState as Test,
  TestStatusResponse,
} from '@wsmon/contracts';
import type { ApiKeysService } from '../auth/api-keys.service';
import { unary } from '../grpc/grpc-calls';
import { definedFields } from '../grpc/proto-json';
import type { AlertsService } from './alerts.service';
import type { StatusService } from './status.service';

const TEST_STATE: Record<Test, TestState> = {
  ok: TestState.TEST_STATE_OK,
  failing: TestState.TEST_STATE_FAILING,
  alerting: TestState.TEST_STATE_ALERTING,
  no_data: TestState.TEST_STATE_NO_DATA,
};

const LOCATION_HEALTH: Record<LocationStatus, LocationHealth> = {
  healthy: LocationHealth.LOCATION_HEALTH_HEALTHY,
  unhealthy: LocationHealth.LOCATION_HEALTH_UNHEALTHY,
  no_data: LocationHealth.LOCATION_HEALTH_NO_DATA,
  no_agent: LocationHealth.LOCATION_HEALTH_NO_AGENT,
};

const ALERT_STATE: Record<State, AlertState> = {
  open: AlertState.ALERT_STATE_OPEN,
  resolved: AlertState.ALERT_STATE_RESOLVED,
};

const STATE_TO_JSON: Partial<Record<AlertState, State>> = {
  [AlertState.ALERT_STATE_OPEN]: 'open',
  [AlertState.ALERT_STATE_RESOLVED]: 'resolved',
};

const date = (iso: string | null): Date | undefined => (iso === null ? undefined : new Date(iso));

export const testStatusProto = (s: TestStatusResponse): TestStatus => ({
  test_id: s.test_id,
  test_name: s.test_name,
  enabled: s.enabled,
  state: TEST_STATE[s.state],
  alert_id: s.alert_id ?? undefined,
  locations: s.locations.map((l) => ({
    location: l.location,
    status: LOCATION_HEALTH[l.status],
    since: new Date(l.since),
    last_result_time: date(l.last_result_at),
    reason: l.reason ?? undefined,
    cause: l.cause ?? undefined,
  })),
});

export const alertProto = (a: AlertResponse): Alert => ({
  id: a.id,
  test_id: a.test_id,
  test_name: a.test_name,
  state: ALERT_STATE[a.state],
  min_failing_locations: a.min_failing_locations,
  for_minutes: a.for_minutes,
  locations: a.locations.map((l) => ({
    location: l.location,
    status: LOCATION_HEALTH[l.status],
    failing_since: new Date(l.failing_since),
    reason: l.reason ?? undefined,
    cause: l.cause ?? undefined,
  })),
  start_time: new Date(a.started_at),
  resolve_time: date(a.resolved_at),
  resolution: a.resolution ?? undefined,
});

/** The status and alert operations of ConfigService: thin, over the services REST uses. */
export function alertsGrpcHandlers(
  status: StatusService,
  alerts: AlertsService,
  apiKeys: ApiKeysService,
): Pick<ConfigServiceServer, 'getTestStatus' | 'listTestStatuses' | 'listAlerts'> {
  return {
    getTestStatus: unary(apiKeys, 'viewer', async (req) => ({
      status: testStatusProto(await status.get(req.test_id)),
    })),
    listTestStatuses: unary(apiKeys, 'viewer', async () => {
      const list = await status.list();
      return { statuses: list.items.map(testStatusProto), evaluate_time: new Date(list.evaluated_at) };
    }),
    listAlerts: unary(apiKeys, 'viewer', async (req) => {
      const page = await alerts.list(
        definedFields({
          test: req.test_id || undefined,
          // Unspecified means any; an unknown number is passed on and rejected by the schema.
          state:
            req.state === AlertState.ALERT_STATE_UNSPECIFIED
              ? undefined
              : (STATE_TO_JSON[req.state] ?? req.state),
          page_size: req.page_size || undefined,
          page_token: req.page_token || undefined,
        }),
      );
      return { alerts: page.items.map(alertProto), next_page_token: page.next_page_token ?? '' };
    }),
  };
}
