import { describe, expect, it } from 'vitest';
import {
  advanceLocation,
  alertTransition,
  classifyResult,
  locationsNeeded,
  noDataAfterMs,
  shownReason,
  testState,
  type LocationInput,
  type LocationState,
  type ResultSample,
} from './location-status';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const WINDOW_MS = 40_000;

const ok = (seconds: number, value = 20): ResultSample => ({
  slotTime: at(seconds),
  success: true,
  value,
  reason: null,
  cause: null,
});
const failed = (seconds: number, reason = 'ws_open_failed', cause = 'connection_refused'): ResultSample => ({
  slotTime: at(seconds),
  success: false,
  value: null,
  reason,
  cause,
});

function advance(
  previous: LocationState | undefined,
  nowS: number,
  results: ResultSample[],
  options: Partial<LocationInput> = {},
): LocationState {
  return advanceLocation(previous, {
    now: at(nowS),
    hasAgent: true,
    results,
    interpretation: 'handshake_latency',
    noDataAfterMs: WINDOW_MS,
    ...options,
  });
}

describe(classifyResult.name, () => {
  const none = { status: null, reason: null };
  const slow = { status: 'unhealthy' as const, reason: 'threshold_exceeded' };

  it('takes a failed result as unhealthy, with its reason and cause', () => {
    expect(classifyResult(failed(0), 'connection_success', none)).toEqual({
      status: 'unhealthy',
      reason: 'ws_open_failed',
      cause: 'connection_refused',
    });
  });

  it('takes a latency over the unhealthy threshold (1000 ms) as unhealthy, even when the probe passed', () => {
    expect(classifyResult(ok(0, 1000.5), 'handshake_latency', none)).toEqual({
      status: 'unhealthy',
      reason: 'threshold_exceeded',
      cause: 'slow_handshake',
    });
    expect(classifyResult(ok(0, 1500), 'round_trip_latency', none).cause).toBe('slow_round_trip');
    expect(classifyResult(ok(0, 1000), 'handshake_latency', none).status).toBe('healthy');
  });

  it('keeps a slow location unhealthy until it is back under the healthy threshold (200 ms)', () => {
    expect(classifyResult(ok(0, 500), 'handshake_latency', slow).status).toBe('unhealthy');
    expect(classifyResult(ok(0, 200), 'handshake_latency', slow).status).toBe('unhealthy');
    expect(classifyResult(ok(0, 199), 'handshake_latency', slow).status).toBe('healthy');
  });

  it('takes a success between the thresholds as healthy after a failure or when healthy', () => {
    expect(
      classifyResult(ok(0, 500), 'handshake_latency', { status: 'unhealthy', reason: 'ws_open_failed' }),
    ).toMatchObject({ status: 'healthy' });
    expect(classifyResult(ok(0, 500), 'handshake_latency', { status: 'healthy', reason: null }).status).toBe(
      'healthy',
    );
  });

  it('has no latency threshold for connection_success, nor for a success without a value', () => {
    expect(classifyResult(ok(0, 1), 'connection_success', none).status).toBe('healthy');
    expect(classifyResult({ ...ok(0), value: null }, 'handshake_latency', slow).status).toBe('healthy');
  });
});

describe(advanceLocation.name, () => {
  it('has no data, not yet failing, while the first result is not due', () => {
    const state = advance(undefined, 0, []);
    expect(state).toMatchObject({ status: 'no_data', since: at(0), failingSince: null, trackedSince: at(0) });
    expect(shownReason(state)).toEqual({ reason: 'awaiting_first_result', cause: null });
    const later = advance(state, 39, []);
    expect(later).toMatchObject({ status: 'no_data', failingSince: null });
  });

  it('fails once the first result is overdue, from the moment it was due', () => {
    const state = advance(advance(undefined, 0, []), 41, []);
    expect(state).toMatchObject({ status: 'no_data', since: at(0), failingSince: at(40) });
    expect(shownReason(state).reason).toBe('no_result');
  });

  it('is healthy from the first passing result, and unhealthy from the first failed one', () => {
    const first = advance(advance(undefined, 0, []), 5, [ok(2), ok(3)]);
    expect(first).toMatchObject({ status: 'healthy', since: at(2), failingSince: null, lastResultAt: at(3) });
    const failing = advance(first, 10, [ok(6), failed(7), failed(8)]);
    expect(failing).toMatchObject({ status: 'unhealthy', since: at(7), failingSince: at(7) });
    expect(shownReason(failing)).toEqual({ reason: 'ws_open_failed', cause: 'connection_refused' });
    const still = advance(failing, 15, [failed(12, 'ws_reply_timeout', 'reply_timeout')]);
    expect(still).toMatchObject({ status: 'unhealthy', since: at(7), failingSince: at(7) });
    expect(shownReason(still)).toEqual({ reason: 'ws_reply_timeout', cause: 'reply_timeout' });
    const back = advance(still, 20, [ok(16)]);
    expect(back).toMatchObject({ status: 'healthy', since: at(16), failingSince: null, reason: null });
  });

  it('starts a new failing stretch after a healthy result between two passes', () => {
    const failing = advance(undefined, 10, [failed(5)]);
    expect(failing.failingSince).toEqual(at(5));
    const again = advance(failing, 20, [ok(12), failed(15)]);
    expect(again).toMatchObject({ status: 'unhealthy', since: at(15), failingSince: at(15) });
  });

  it('ignores results at or before the latest slot it took (late arrivals)', () => {
    const state = advance(undefined, 10, [failed(8)]);
    expect(advance(state, 12, [ok(7), ok(8)])).toMatchObject({ status: 'unhealthy', lastResultAt: at(8) });
  });

  it('has no data once the latest result is older than the window, failing from when the next was due', () => {
    const healthy = advance(undefined, 10, [ok(10)]);
    const stale = advance(healthy, 51, []);
    expect(stale).toMatchObject({ status: 'no_data', since: at(50), failingSince: at(50) });
    expect(shownReason(stale).reason).toBe('no_recent_result');
    expect(advance(stale, 60, [ok(58)])).toMatchObject({
      status: 'healthy',
      since: at(58),
      failingSince: null,
    });
  });

  it('has no agent, failing at once, whatever its results say; never a pass', () => {
    const healthy = advance(undefined, 10, [ok(10)]);
    const gone = advance(healthy, 12, [], { hasAgent: false });
    expect(gone).toMatchObject({ status: 'no_agent', since: at(12), failingSince: at(12) });
    expect(shownReason(gone)).toEqual({ reason: 'no_agent', cause: null });
    expect(advance(gone, 20, [], { hasAgent: false })).toMatchObject({ since: at(12), failingSince: at(12) });
    // Before any result, too: a location without an agent is not "awaiting".
    expect(advance(undefined, 0, [], { hasAgent: false })).toMatchObject({ failingSince: at(0) });
  });

  it('keeps one failing stretch across unhealthy, no agent and no data', () => {
    const unhealthy = advance(undefined, 10, [failed(5)]);
    const gone = advance(unhealthy, 20, [], { hasAgent: false });
    expect(gone).toMatchObject({ status: 'no_agent', since: at(20), failingSince: at(5) });
    const silent = advance(gone, 60, []);
    expect(silent).toMatchObject({ status: 'no_data', failingSince: at(5) });
    const back = advance(silent, 70, [failed(68)]);
    expect(back).toMatchObject({ status: 'unhealthy', since: at(68), failingSince: at(5) });
  });

  it('comes back from no agent with the status of its new results', () => {
    const gone = advance(advance(undefined, 10, [ok(10)]), 12, [], { hasAgent: false });
    expect(advance(gone, 20, [ok(18)])).toMatchObject({
      status: 'healthy',
      since: at(18),
      failingSince: null,
    });
  });

  it('keeps a slow location unhealthy across results between the thresholds', () => {
    const slow = advance(undefined, 10, [ok(5, 1500)]);
    expect(slow).toMatchObject({
      status: 'unhealthy',
      reason: 'threshold_exceeded',
      cause: 'slow_handshake',
    });
    const between = advance(slow, 20, [ok(15, 600)]);
    expect(between).toMatchObject({ status: 'unhealthy', since: at(5), failingSince: at(5) });
    expect(advance(between, 30, [ok(25, 150)])).toMatchObject({ status: 'healthy', since: at(25) });
  });
});

describe(noDataAfterMs.name, () => {
  const probe = { url: 'ws://127.0.0.1/', timeout_ms: 2000 } as Parameters<typeof noDataAfterMs>[0]['probe'];

  it('allows three periods, the longest run with its retries, and 30 s', () => {
    expect(
      noDataAfterMs({ schedule: { interval_s: 60 }, probe, retry: { attempts: 2, delay_ms: 500 } }),
    ).toBe(3 * 60_000 + 3 * 2000 + 2 * 500 + 30_000);
  });

  it("takes a cron's longest gap between fire times as its period", () => {
    const retry = { attempts: 0, delay_ms: 1000 };
    const run = 2000 + 30_000;
    expect(noDataAfterMs({ schedule: { cron: '*/10 * * * * *' }, probe, retry })).toBe(3 * 10_000 + run);
    expect(noDataAfterMs({ schedule: { cron: '0,10 * * * * *' }, probe, retry })).toBe(3 * 50_000 + run);
    // Weekdays at 09:00: Friday to Monday is the longest gap.
    expect(noDataAfterMs({ schedule: { cron: '0 9 * * 1-5' }, probe, retry }, T0)).toBe(
      3 * 3 * 86_400_000 + run,
    );
  });
});

describe(alertTransition.name, () => {
  const rule = { min_failing_locations: 2, for_minutes: 5 };
  const now = at(3600);
  const failingFor = (minutes: number) => ({ failingSince: new Date(now.getTime() - minutes * 60_000) });
  const passing = { failingSince: null };

  it('opens when at least N locations have been failing for X minutes', () => {
    expect(alertTransition(rule, [failingFor(5), failingFor(6), passing], false, now)).toBe('open');
    expect(alertTransition(rule, [failingFor(5), failingFor(4.9), passing], false, now)).toBe('none');
    expect(alertTransition(rule, [failingFor(60), passing, passing], false, now)).toBe('none');
  });

  it('resolves as soon as fewer than N locations fail, and stays open while N do', () => {
    expect(alertTransition(rule, [failingFor(10), failingFor(0), passing], true, now)).toBe('none');
    expect(alertTransition(rule, [failingFor(10), passing, passing], true, now)).toBe('resolve');
  });

  it('needs all locations when N is more than the test has', () => {
    const three = { min_failing_locations: 3, for_minutes: 1 };
    expect(locationsNeeded(three, 2)).toBe(2);
    expect(alertTransition(three, [failingFor(2), failingFor(2)], false, now)).toBe('open');
  });
});

describe(testState.name, () => {
  const state = (status: LocationState['status'], failing: boolean): LocationState => ({
    status,
    since: at(0),
    failingSince: failing ? at(0) : null,
    trackedSince: at(0),
    lastResultAt: null,
    resultStatus: null,
    resultSince: null,
    reason: null,
    cause: null,
  });

  it('is alerting, else failing, else no data, else ok', () => {
    expect(testState(true, [state('healthy', false)])).toBe('alerting');
    expect(testState(false, [state('healthy', false), state('no_agent', true)])).toBe('failing');
    expect(testState(false, [state('healthy', false), state('no_data', true)])).toBe('failing');
    expect(testState(false, [state('healthy', false), state('no_data', false)])).toBe('no_data');
    expect(testState(false, [state('healthy', false), state('healthy', false)])).toBe('ok');
  });
});
