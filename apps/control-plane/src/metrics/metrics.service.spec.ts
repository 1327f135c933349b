import { Histogram, writeExposition } from '@wsmon/metrics';
import { familyNamed, parseExposition, sampleValue } from '@wsmon/metrics/parser';
import { describe, expect, it } from 'vitest';
import type { LatestResultRow } from './metrics.repository';
import { controlPlaneFamilies, latestResultFamilies, type MetricsSnapshot } from './metrics.service';

function row(overrides: Partial<LatestResultRow> = {}): LatestResultRow {
  return {
    test_id: '6e14c66a-e9f4-46c0-8f16-88ead3e39370',
    test_name: 'chat gateway',
    location: 'eu-west',
    slot_s: 1_763_712_000,
    success: true,
    open_ms: 45.25,
    round_trip_ms: 3.5,
    total_ms: 52.1,
    tls_not_after_s: 1_780_000_000.5,
    reason: null,
    cause: null,
    category: null,
    ...overrides,
  };
}

function snapshot(overrides: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  const lag = new Histogram([1, 10]);
  lag.observe(0.4);
  lag.observe(12);
  return {
    replicaId: 'replica-1',
    version: '0.1.0',
    latest: [],
    locations: [
      { location: 'eu-west', connected_agents: 2, enabled_tests: 5 },
      { location: 'us-east', connected_agents: 0, enabled_tests: 1 },
    ],
    localStreams: 2,
    counters: {
      streamsOpened: 3,
      streamErrors: new Map([
        ['UNAVAILABLE', 1],
        ['CANCELLED', 2],
      ]),
      resultsIngested: 42,
      ingestLagSeconds: lag,
    },
    ...overrides,
  };
}

describe(latestResultFamilies.name, () => {
  it('reports the gauges of seed 004 with round trip and certificate expiry, labelled by test and location', () => {
    const families = parseExposition(writeExposition(latestResultFamilies([row()])));
    const labels = { test: 'chat gateway', test_id: row().test_id, location: 'eu-west' };
    expect(sampleValue(families, 'probe_success', labels)).toBe(1);
    expect(sampleValue(families, 'probe_websocket_up', labels)).toBe(1);
    expect(sampleValue(families, 'probe_websocket_connection_duration_seconds', labels)).toBe(0.04525);
    expect(sampleValue(families, 'probe_duration_seconds', labels)).toBe(0.0521);
    expect(sampleValue(families, 'probe_wsmon_round_trip_seconds', labels)).toBe(0.0035);
    expect(sampleValue(families, 'probe_ssl_earliest_cert_expiry', labels)).toBe(1_780_000_000);
    expect(sampleValue(families, 'probe_wsmon_last_result_timestamp_seconds', labels)).toBe(1_763_712_000);
    expect(familyNamed(families, 'probe_wsmon_failure_info')?.samples).toEqual([]);
    expect(families.every((f) => f.type === 'gauge')).toBe(true);
  });

  it('leaves out what a failed result did not measure, and says why it failed', () => {
    const failed = row({
      location: 'us-east',
      success: false,
      open_ms: null,
      round_trip_ms: null,
      tls_not_after_s: null,
      reason: 'ws_open_failed',
      cause: 'connection_refused',
      category: 'network',
    });
    const families = parseExposition(writeExposition(latestResultFamilies([row(), failed])));
    const labels = { location: 'us-east' };
    expect(sampleValue(families, 'probe_success', labels)).toBe(0);
    expect(sampleValue(families, 'probe_websocket_up', labels)).toBe(0);
    for (const absent of [
      'probe_websocket_connection_duration_seconds',
      'probe_wsmon_round_trip_seconds',
      'probe_ssl_earliest_cert_expiry',
    ]) {
      expect(familyNamed(families, absent)?.samples.map((s) => s.labels.location)).toEqual(['eu-west']);
    }
    expect(familyNamed(families, 'probe_wsmon_failure_info')?.samples).toEqual([
      {
        name: 'probe_wsmon_failure_info',
        labels: {
          test: 'chat gateway',
          test_id: row().test_id,
          location: 'us-east',
          reason: 'ws_open_failed',
          cause: 'connection_refused',
          category: 'network',
        },
        value: 1,
      },
    ]);
  });

  it('carries any test name through the label escaping', () => {
    const name = 'feed "prices"\\eu\nsecond line';
    const families = parseExposition(writeExposition(latestResultFamilies([row({ test_name: name })])));
    expect(familyNamed(families, 'probe_success')?.samples[0]?.labels.test).toBe(name);
  });
});

describe(controlPlaneFamilies.name, () => {
  it("reports agents and tests per location, this replica's streams, ingest and its lag", () => {
    const text = writeExposition(controlPlaneFamilies(snapshot()));
    const families = parseExposition(text);
    expect(sampleValue(families, 'wsmon_control_plane_location_agents', { location: 'eu-west' })).toBe(2);
    expect(sampleValue(families, 'wsmon_control_plane_location_agents', { location: 'us-east' })).toBe(0);
    expect(sampleValue(families, 'wsmon_control_plane_location_tests', { location: 'us-east' })).toBe(1);
    expect(sampleValue(families, 'wsmon_control_plane_agent_streams')).toBe(2);
    expect(sampleValue(families, 'wsmon_control_plane_agent_streams_opened_total')).toBe(3);
    expect(
      sampleValue(families, 'wsmon_control_plane_agent_stream_errors_total', { code: 'CANCELLED' }),
    ).toBe(2);
    expect(sampleValue(families, 'wsmon_control_plane_results_ingested_total')).toBe(42);
    expect(familyNamed(families, 'wsmon_control_plane_ingest_lag_seconds')?.type).toBe('histogram');
    expect(sampleValue(families, 'wsmon_control_plane_ingest_lag_seconds_bucket', { le: '10' })).toBe(1);
    expect(sampleValue(families, 'wsmon_control_plane_ingest_lag_seconds_count')).toBe(2);
    expect(sampleValue(families, 'wsmon_control_plane_info', { replica_id: 'replica-1' })).toBe(1);
  });
});
