import {
  LATENCY_THRESHOLDS_MS,
  type AlertRule,
  type Interpretation,
  type LocationStatus,
  type ProbeConfig,
  type RetryPolicy,
  type Schedule,
  type TestState,
} from '@wsmon/contracts';
import { schedulePeriodMs } from './schedule-period';

/**
 * The status of a test in a location, and when a test alerts: pure functions of the previous state,
 * the new results, whether an agent runs the test there, and the time. docs/alerting.md states the
 * rules in prose; the specs hold them case by case.
 */

/** What the status needs of one stored result. */
export interface ResultSample {
  readonly slotTime: Date;
  readonly success: boolean;
  readonly value: number | null;
  readonly reason: string | null;
  readonly cause: string | null;
}

export type ResultStatus = 'healthy' | 'unhealthy';

/** A test's status in one location, as the evaluation keeps it (`location_statuses`). */
export interface LocationState {
  readonly status: LocationStatus;
  /** When the location entered `status`. */
  readonly since: Date;
  /** Start of the current unbroken stretch of failing statuses; null while not failing. */
  readonly failingSince: Date | null;
  /** When the evaluation started following the test in this location: the first result is due from here. */
  readonly trackedSince: Date;
  /** The slot of the latest result taken into account. */
  readonly lastResultAt: Date | null;
  /** What the results alone say; null before the first. */
  readonly resultStatus: ResultStatus | null;
  /** The slot of the first result of the current run of `resultStatus`. */
  readonly resultSince: Date | null;
  /** Reason and cause of the latest result when it is unhealthy. */
  readonly reason: string | null;
  readonly cause: string | null;
}

export interface LocationInput {
  readonly now: Date;
  /** Whether an agent of the location runs the test (a member of its assignment). */
  readonly hasAgent: boolean;
  /** Results with slots after the previous state's `lastResultAt`, oldest first. */
  readonly results: readonly ResultSample[];
  readonly interpretation: Interpretation;
  /** No result for this long after the latest (or after tracking began): no data. */
  readonly noDataAfterMs: number;
}

/** Allowance for batching and the way from the agent to the database. */
export const NO_DATA_GRACE_MS = 30_000;

/**
 * How long a location may go without a result before it has no data: three schedule periods, the
 * longest run (every attempt timing out, with the retry delays) and {@link NO_DATA_GRACE_MS}. A test
 * runs at a stable offset within its period, so this is two results in a row that should have arrived
 * and did not: one missed slot (an agent restarting, a hand-off) is not an outage of the monitoring.
 */
export function noDataAfterMs(
  test: { readonly schedule: Schedule; readonly probe: ProbeConfig; readonly retry: RetryPolicy },
  nowMs = Date.now(),
): number {
  const run = test.probe.timeout_ms * (test.retry.attempts + 1) + test.retry.delay_ms * test.retry.attempts;
  return 3 * schedulePeriodMs(test.schedule, nowMs) + run + NO_DATA_GRACE_MS;
}

/**
 * One result's verdict. A failed result is unhealthy (the agent already retried it as the test's retry
 * policy says). A latency over the interpretation's unhealthy threshold is unhealthy too
 * (`threshold_exceeded`); a location unhealthy for that reason becomes healthy again only under the
 * healthy threshold, so a latency wandering around one threshold does not flap.
 */
export function classifyResult(
  result: ResultSample,
  interpretation: Interpretation,
  previous: { readonly status: ResultStatus | null; readonly reason: string | null },
): { status: ResultStatus; reason: string | null; cause: string | null } {
  if (!result.success) return { status: 'unhealthy', reason: result.reason ?? 'failed', cause: result.cause };
  const thresholds = LATENCY_THRESHOLDS_MS[interpretation];
  if (thresholds && result.value !== null) {
    const slow = {
      status: 'unhealthy' as const,
      reason: 'threshold_exceeded',
      cause: interpretation === 'handshake_latency' ? 'slow_handshake' : 'slow_round_trip',
    };
    if (result.value > thresholds.unhealthyAbove) return slow;
    const wasSlow = previous.status === 'unhealthy' && previous.reason === 'threshold_exceeded';
    if (wasSlow && result.value >= thresholds.healthyBelow) return slow;
  }
  return { status: 'healthy', reason: null, cause: null };
}

const later = (a: Date, b: Date) => (a.getTime() >= b.getTime() ? a : b);
const earliest = (dates: readonly (Date | null | undefined)[]): Date | null =>
  dates.reduce<Date | null>((min, d) => (d && (!min || d.getTime() < min.getTime()) ? d : min), null);

/**
 * The next state of a location: the new results are taken in slot order, then the location is
 * `no_agent` when no agent runs the test there, `no_data` when its latest result is older than
 * `noDataAfterMs` (or there is none yet), else what its latest result says.
 *
 * Failing means `unhealthy`, `no_agent`, or `no_data` once a result is overdue; `no_data` before the
 * first result is due is not failing (a new test in an hourly schedule has no data for up to an hour),
 * and no status but `healthy` is ever passing. `failingSince` runs on across failing statuses (a
 * location unhealthy, then without its agent, has been failing since it became unhealthy) and ends
 * with a healthy result.
 */
export function advanceLocation(previous: LocationState | undefined, input: LocationInput): LocationState {
  const { now } = input;
  const trackedSince = previous?.trackedSince ?? now;
  let lastResultAt = previous?.lastResultAt ?? null;
  let resultStatus = previous?.resultStatus ?? null;
  let resultSince = previous?.resultSince ?? null;
  let reason = previous?.reason ?? null;
  let cause = previous?.cause ?? null;
  let healthySeen = false;
  let firstNew: Date | undefined;
  for (const result of input.results) {
    if (lastResultAt && result.slotTime.getTime() <= lastResultAt.getTime()) continue;
    firstNew ??= result.slotTime;
    const verdict = classifyResult(result, input.interpretation, { status: resultStatus, reason });
    if (verdict.status !== resultStatus) {
      resultStatus = verdict.status;
      resultSince = result.slotTime;
    }
    ({ reason, cause } = verdict);
    if (verdict.status === 'healthy') healthySeen = true;
    lastResultAt = result.slotTime;
  }

  const dueAt = new Date((lastResultAt ?? trackedSince).getTime() + input.noDataAfterMs);
  const overdue = now.getTime() > dueAt.getTime();
  let status: LocationStatus;
  let since: Date;
  if (!input.hasAgent) {
    status = 'no_agent';
    since = previous?.status === 'no_agent' ? previous.since : now;
  } else if (lastResultAt === null || overdue) {
    status = 'no_data';
    since = previous?.status === 'no_data' ? previous.since : lastResultAt === null ? trackedSince : dueAt;
  } else {
    status = resultStatus!;
    if (!previous || previous.status === 'healthy' || previous.status === 'unhealthy') {
      since = previous?.status === status ? later(previous.since, resultSince!) : resultSince!;
    } else {
      // Back from no agent or no data: this status is known from the first new result on.
      since = later(resultSince!, firstNew ?? now);
    }
  }

  const failing = status === 'unhealthy' || status === 'no_agent' || (status === 'no_data' && overdue);
  let failingSince: Date | null = null;
  if (failing) {
    failingSince = earliest([
      // Still the same stretch: no healthy result came in between.
      !healthySeen ? previous?.failingSince : null,
      // The latest results failed from `resultSince` on, up to whatever followed them.
      resultStatus === 'unhealthy' ? resultSince : null,
      status === 'no_agent' ? since : null,
      status === 'no_data' ? dueAt : null,
    ]);
  }
  return {
    status,
    since,
    failingSince,
    trackedSince,
    lastResultAt,
    resultStatus,
    resultSince,
    reason: resultStatus === 'unhealthy' ? reason : null,
    cause: resultStatus === 'unhealthy' ? cause : null,
  };
}

/** The reason and cause the API shows for a location's state. */
export function shownReason(state: LocationState): { reason: string | null; cause: string | null } {
  switch (state.status) {
    case 'healthy':
      return { reason: null, cause: null };
    case 'unhealthy':
      return { reason: state.reason, cause: state.cause };
    case 'no_agent':
      return { reason: 'no_agent', cause: null };
    case 'no_data':
      if (state.lastResultAt !== null) return { reason: 'no_recent_result', cause: null };
      return { reason: state.failingSince ? 'no_result' : 'awaiting_first_result', cause: null };
  }
}

/** Whether a state counts against the test: see {@link advanceLocation}. */
export const isFailing = (state: Pick<LocationState, 'failingSince'>): boolean => state.failingSince !== null;

/**
 * How many failing locations an alert needs: `min_failing_locations`, but never more than the test has
 * (a rule asking for 3 of 2 locations alerts when both fail, rather than never).
 */
export const locationsNeeded = (rule: AlertRule, locationCount: number): number =>
  Math.max(1, Math.min(rule.min_failing_locations, locationCount));

/**
 * Whether a test's alert opens, resolves, or stays as it is. It opens when at least
 * {@link locationsNeeded} locations have been failing for at least `for_minutes`, and resolves as soon
 * as fewer than that are failing at all.
 */
export function alertTransition(
  rule: AlertRule,
  locations: readonly Pick<LocationState, 'failingSince'>[],
  isOpen: boolean,
  now: Date,
): 'open' | 'resolve' | 'none' {
  const needed = locationsNeeded(rule, locations.length);
  if (isOpen) return locations.filter(isFailing).length < needed ? 'resolve' : 'none';
  const sustainedFrom = now.getTime() - rule.for_minutes * 60_000;
  const sustained = locations.filter((l) => l.failingSince && l.failingSince.getTime() <= sustainedFrom);
  return locations.length > 0 && sustained.length >= needed ? 'open' : 'none';
}

/** A test's state over its locations: alerting, else failing when any location fails, else no data when any has none, else ok. */
export function testState(isAlerting: boolean, locations: readonly LocationState[]): TestState {
  if (isAlerting) return 'alerting';
  if (locations.some((l) => l.status === 'unhealthy' || l.status === 'no_agent' || isFailing(l)))
    return 'failing';
  if (locations.some((l) => l.status === 'no_data')) return 'no_data';
  return 'ok';
}
