import { z } from 'zod';
import type { Interpretation } from './probe-config.schema';
import { listQuerySchema } from './resources.schema';
import { custom, tag, uniqueList } from './schema-parts';

/**
 * Status, alerts and webhooks as every API shows them (REST, gRPC, the CLI). The rules that decide a
 * status are in docs/alerting.md.
 */

// ---------- status ----------

/** A location's status for one test. `no_agent` is its own state: never a silent pass. */
export const LOCATION_STATUSES = ['healthy', 'unhealthy', 'no_data', 'no_agent'] as const;
export type LocationStatus = (typeof LOCATION_STATUSES)[number];

/** A test's state over its locations: `alerting` > `failing` > `no_data` > `ok`. */
export const TEST_STATES = ['ok', 'failing', 'alerting', 'no_data'] as const;
export type TestState = (typeof TEST_STATES)[number];

/**
 * The healthy and unhealthy thresholds of the latency interpretations (milliseconds), from the reference
 * "Configure WebSocket probes" page: healthy under 200, unhealthy over 1000. `connection_success` has
 * none beyond the verdict itself (healthy over 0, unhealthy under 1: the probe succeeded or failed).
 */
export const LATENCY_THRESHOLDS_MS: Readonly<
  Record<Interpretation, { readonly healthyBelow: number; readonly unhealthyAbove: number } | null>
> = {
  handshake_latency: { healthyBelow: 200, unhealthyAbove: 1000 },
  round_trip_latency: { healthyBelow: 200, unhealthyAbove: 1000 },
  connection_success: null,
};

/** One location of a test's status. */
export interface LocationStatusResponse {
  /** The location's name. */
  location: string;
  status: LocationStatus;
  /** When the location entered this status (RFC 3339). */
  since: string;
  /** The slot of the latest result from this location; null before the first. */
  last_result_at: string | null;
  /**
   * Why it is not healthy: the failed result's reason code (docs/probe.md), `threshold_exceeded`,
   * `no_agent`, `no_recent_result`, `no_result`, `awaiting_first_result` or `test_paused`; null when healthy.
   */
  reason: string | null;
  /** The finer cause: the failed result's cause, or `slow_handshake` / `slow_round_trip`; else null. */
  cause: string | null;
}

/** A test's status: `GET /api/v1/status` lists them, `GET /api/v1/tests/{id}/status` returns one. */
export interface TestStatusResponse {
  test_id: string;
  test_name: string;
  enabled: boolean;
  state: TestState;
  /** The open alert of the test, when `state` is `alerting`. */
  alert_id: string | null;
  /** One per location of the test, by location name. */
  locations: LocationStatusResponse[];
}

export interface StatusListResponse {
  items: TestStatusResponse[];
  /** The time the statuses were computed at (the database's clock). */
  evaluated_at: string;
}

// ---------- alerts ----------

export const ALERT_STATES = ['open', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/** Why an alert resolved: fewer locations failing, or the test was deleted or paused. */
export const ALERT_RESOLUTIONS = ['recovered', 'test_deleted', 'test_paused'] as const;
export type AlertResolution = (typeof ALERT_RESOLUTIONS)[number];

/** A failing location of an alert, as it stood when last evaluated while the alert was open. */
export interface AlertLocationResponse {
  location: string;
  /** `unhealthy`, `no_data` or `no_agent`. */
  status: LocationStatus;
  /** Since when the location has been failing without a break (RFC 3339). */
  failing_since: string;
  reason: string | null;
  cause: string | null;
}

export interface AlertResponse {
  id: string;
  test_id: string;
  /** The test's name when the alert opened (the test may since be renamed or deleted). */
  test_name: string;
  state: AlertState;
  /** The alert rule in force when the alert opened. */
  min_failing_locations: number;
  for_minutes: number;
  /** The failing locations with their reasons. */
  locations: AlertLocationResponse[];
  /** When the alert opened. */
  started_at: string;
  /** When it resolved; null while open. */
  resolved_at: string | null;
  resolution: AlertResolution | null;
}

/** `GET /api/v1/alerts`: newest first. */
export const alertListQuerySchema = listQuerySchema.extend({
  /** Only the alerts of the test with this id. */
  test: z.uuid().optional(),
  state: z.enum(ALERT_STATES).optional(),
});
export type AlertListQuery = z.output<typeof alertListQuerySchema>;

// ---------- webhooks ----------

/** What a notification is about. */
export const WEBHOOK_EVENTS = ['alert.opened', 'alert.resolved', 'test'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const WEBHOOK_DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;
export type WebhookDeliveryState = (typeof WEBHOOK_DELIVERY_STATES)[number];

/** The signature header: `sha256=` and the hex HMAC-SHA256 of the raw body under the webhook's secret. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-wsmon-signature';
/** Unix seconds of the attempt; the same instant as the signed body's `timestamp`. */
export const WEBHOOK_TIMESTAMP_HEADER = 'x-wsmon-timestamp';
/** The delivery id, the same on every attempt of one notification: receivers drop duplicates by it. */
export const WEBHOOK_DELIVERY_HEADER = 'x-wsmon-delivery';
export const WEBHOOK_EVENT_HEADER = 'x-wsmon-event';

const webhookUrl = z
  .string()
  .max(2048)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      custom(ctx, [], 'url', 'must be an absolute http:// or https:// URL');
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      custom(ctx, [], 'http_scheme', 'must start with http:// or https://');
    } else if (url.username || url.password) {
      custom(ctx, [], 'no_credentials', 'must not contain credentials: receivers check the signature');
    }
  });

/** `POST /api/v1/webhooks`. Tests and tags filter the alerts notified; both empty: every test. */
export const webhookInputSchema = z.strictObject({
  name: z.string().trim().max(100).default(''),
  url: webhookUrl,
  /** The HMAC-SHA256 key; generated when absent. Returned once, in the response to the creation. */
  secret: z.string().min(16).max(256).optional(),
  /** Ids of tests whose alerts are sent. */
  tests: uniqueList(z.uuid('must be a test id (a UUID)'), 200).default([]),
  /** Alerts of tests with any of these tags are sent. */
  tags: uniqueList(tag, 50).default([]),
});
export type WebhookInput = z.output<typeof webhookInputSchema>;

export interface WebhookResponse {
  id: string;
  name: string;
  url: string;
  tests: string[];
  tags: string[];
  created_at: string;
  /** Only in the response to the creation: never shown again. */
  secret?: string;
}

export interface WebhookDeliveryAttemptResponse {
  attempt: number;
  started_at: string;
  duration_ms: number;
  /** The receiver's HTTP status; null when no response came (`error` says why). */
  status_code: number | null;
  error: string | null;
}

export interface WebhookDeliveryResponse {
  /** The delivery id: the notification's `id`, the same on every attempt. */
  id: string;
  webhook_id: string;
  event: WebhookEvent;
  alert_id: string | null;
  test_id: string | null;
  state: WebhookDeliveryState;
  created_at: string;
  /** When the next attempt is due, while pending. */
  next_attempt_at: string | null;
  /** When it was delivered or given up. */
  completed_at: string | null;
  attempts: WebhookDeliveryAttemptResponse[];
}

/** `GET /api/v1/webhooks/{id}/deliveries`: newest first. */
export const webhookDeliveryListQuerySchema = listQuerySchema.extend({
  state: z.enum(WEBHOOK_DELIVERY_STATES).optional(),
});
export type WebhookDeliveryListQuery = z.output<typeof webhookDeliveryListQuerySchema>;

/** The JSON body of a notification. The signature covers these exact bytes. */
export interface WebhookNotification {
  /** The delivery id: the same on every attempt. */
  id: string;
  event: WebhookEvent;
  /** When this attempt was sent (RFC 3339): receivers refuse old ones, against replays. */
  timestamp: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** The test alerted; null for a test notification. */
  test: { id: string; name: string; tags: string[] } | null;
  /** The alert; null for a test notification. */
  alert: AlertResponse | null;
  /** Every location of the test at the time of the event: the failing ones with their reasons. */
  locations: LocationStatusResponse[];
  /** One sentence for people and chat tools. */
  message: string;
}
